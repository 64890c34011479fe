//! TLS for `mqtts://` brokers (feature `tls`): rustls with the ring provider, the CA bundle
//! from `ca_file` (default: the system bundle), an optional client certificate.

use crate::error::Context as _;
use rumqttc::{TlsConfiguration, Transport};

use crate::config::{Config, SYSTEM_CA_BUNDLE};

/// The TLS transport for `cfg`.
///
/// # Errors
/// A CA, certificate or key file cannot be read.
pub fn transport(cfg: &Config) -> crate::error::Result<Transport> {
    let ca_path = cfg
        .ca_file
        .clone()
        .unwrap_or_else(|| SYSTEM_CA_BUNDLE.into());
    let ca = std::fs::read(&ca_path)
        .with_context(|| format!("option ca_file: cannot read {}", ca_path.display()))?;
    let client_auth = match (&cfg.cert_file, &cfg.key_file) {
        (Some(c), Some(k)) => Some((
            std::fs::read(c)
                .with_context(|| format!("option cert_file: cannot read {}", c.display()))?,
            std::fs::read(k)
                .with_context(|| format!("option key_file: cannot read {}", k.display()))?,
        )),
        _ => None,
    };
    Ok(Transport::tls_with_config(TlsConfiguration::Simple {
        ca,
        alpn: None,
        client_auth,
    }))
}
