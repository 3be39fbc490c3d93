//! Optional TLS around the tunnel connection (rustls): the server presents a certificate,
//! the client checks it against a CA file. Plain TCP and TLS look the same to the rest of the
//! tunnel: a boxed [`Transport`].

use std::{io, path::Path, sync::Arc};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::{
    rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName},
    },
    TlsAcceptor, TlsConnector,
};

/// Anything a braid session can run over.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {}

/// A tunnel connection, plain or TLS.
pub type BoxedTransport = Box<dyn Transport>;

/// The server's TLS settings: its certificate chain and key.
#[derive(Clone)]
pub struct ServerTls(TlsAcceptor);

/// The client's TLS settings: the CA that signed the server's certificate, and the name to
/// check the certificate against.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("name", &self.name)
            .finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(context: String, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{context}: {e}"))
}

impl ServerTls {
    /// Loads a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> io::Result<ServerTls> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| tls_err(format!("certificate {}", cert.display()), e))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| tls_err(format!("key {}", key.display()), e))?;
        ServerTls::from_der(chain, key)
    }

    /// Builds from DER certificates and key (tests use this with generated certificates).
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> io::Result<ServerTls> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("tls".into(), e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| tls_err("certificate/key".into(), e))?;
        Ok(ServerTls(TlsAcceptor::from(Arc::new(config))))
    }

    /// Runs the server side of the handshake.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<BoxedTransport> {
        Ok(Box::new(self.0.accept(tcp).await?))
    }
}

impl ClientTls {
    /// Trusts the PEM certificates in `ca`. `name` overrides the name checked against the
    /// server's certificate (default: the host part of the server address).
    pub fn from_pem_file(ca: &Path, name: Option<&str>) -> io::Result<ClientTls> {
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| tls_err(format!("CA file {}", ca.display()), e))?;
        ClientTls::from_der(certs, name)
    }

    /// Trusts the given DER certificates.
    pub fn from_der(
        cas: Vec<CertificateDer<'static>>,
        name: Option<&str>,
    ) -> io::Result<ClientTls> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in cas {
            roots
                .add(ca)
                .map_err(|e| tls_err("CA certificate".into(), e))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("tls".into(), e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = name
            .map(|n| ServerName::try_from(n.to_string()))
            .transpose()
            .map_err(|e| tls_err("--tls-server-name".into(), e))?;
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// Runs the client side of the handshake with the server at `server` (`host:port`).
    pub async fn connect(&self, server: &str, tcp: TcpStream) -> io::Result<BoxedTransport> {
        let name = match &self.name {
            Some(name) => name.clone(),
            None => ServerName::try_from(host_of(server).to_string())
                .map_err(|e| tls_err(format!("server name from {server}"), e))?,
        };
        Ok(Box::new(self.connector.connect(name, tcp).await?))
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}
