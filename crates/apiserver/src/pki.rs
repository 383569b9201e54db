//! The cluster's PKI: a CA, the API server's serving certificate, the admin client
//! certificate and the ServiceAccount token signing key (`sa.key`), kept under
//! `DATA/pki/`, plus the admin kubeconfig built from them.
//!
//! Everything is created on first start and reloaded afterwards. The CA is never replaced
//! silently (that would invalidate every kubeconfig handed out); leaf certificates are
//! reissued when their SANs change, when they near expiry, or when they no longer match
//! the CA or their key.

use std::collections::BTreeSet;
use std::fs;
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::{GeneralName, ParsedExtension};

/// Common name of the cluster CA.
pub const CA_COMMON_NAME: &str = "k8rs-ca";
/// Common name of the serving certificate (as upstream's `kube-apiserver`).
const SERVING_COMMON_NAME: &str = "kube-apiserver";
/// User and group of the admin client certificate.
const ADMIN_USER: &str = "admin";
const ADMIN_GROUP: &str = "system:masters";

/// How long a new CA is valid.
const CA_VALIDITY: Duration = Duration::days(3650);
/// How long a new leaf (serving or client) certificate is valid.
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Leaf certificates with less than this left are reissued at start-up.
const LEAF_RENEW_BEFORE: Duration = Duration::days(90);
/// Back-date `notBefore` a little so clients with a slightly late clock accept new certs.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// A certificate and its private key, both PEM.
#[derive(Clone)]
struct CertAndKey {
    cert_pem: String,
    key_pem: String,
}

/// The cluster CA (kept with its key to sign more certificates later), the serving
/// certificate and the admin client certificate.
pub struct Pki {
    ca_pem: String,
    ca_issuer: Issuer<'static, KeyPair>,
    serving: CertAndKey,
    admin: CertAndKey,
    /// The ServiceAccount token signing key (PKCS#8 PEM), `DATA/pki/sa.key`.
    service_account_key: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys.
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

/// A subject alternative name, normalised so that sets of them compare reliably.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    fn parse(s: &str) -> San {
        match s.trim().parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip),
            Err(_) => San::Dns(s.trim().to_ascii_lowercase()),
        }
    }
}

/// Paths of the files under `DATA/pki/`.
struct PkiPaths {
    dir: PathBuf,
}

impl PkiPaths {
    fn new(data_dir: &Path) -> Self {
        PkiPaths {
            dir: data_dir.join("pki"),
        }
    }
    fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    fn serving_cert(&self) -> PathBuf {
        self.dir.join("apiserver.crt")
    }
    fn serving_key(&self) -> PathBuf {
        self.dir.join("apiserver.key")
    }
    fn admin_cert(&self) -> PathBuf {
        self.dir.join("admin.crt")
    }
    fn admin_key(&self) -> PathBuf {
        self.dir.join("admin.key")
    }
}

impl Pki {
    /// Load `DATA/pki/*` or create it on first start: a CA (CN `k8rs-ca`), a serving
    /// certificate for 127.0.0.1, localhost, the host name, `kubernetes`,
    /// `kubernetes.default`, `kubernetes.default.svc`, `kubernetes.default.svc.cluster.local`,
    /// the bind address unless it is unspecified, plus `extra_sans`; and an admin client
    /// certificate (CN `admin`, O `system:masters`). Key files are 0600.
    ///
    /// The serving certificate is reissued when the SAN set changed. Errors name the file
    /// and the fix.
    pub fn load_or_create(
        data_dir: &Path,
        bind_address: IpAddr,
        extra_sans: &[String],
    ) -> anyhow::Result<Pki> {
        let paths = PkiPaths::new(data_dir);
        create_private_dir(&paths.dir)?;

        let (ca_pem, ca_issuer) = load_or_create_ca(&paths)?;
        let ca_der = pem_to_der(&ca_pem, &paths.ca_cert())?;
        let ca_info = CaInfo::from_der(&ca_der, &paths.ca_cert())?;

        let sans = serving_sans(bind_address, extra_sans);
        let serving = load_or_issue_leaf(
            &paths.serving_cert(),
            &paths.serving_key(),
            &ca_info,
            |cert| {
                let have = cert_sans(cert);
                if have != sans {
                    Some("its subject alternative names changed".to_string())
                } else {
                    None
                }
            },
            || issue_serving(&ca_issuer, &sans),
        )?;
        let admin = load_or_issue_leaf(
            &paths.admin_cert(),
            &paths.admin_key(),
            &ca_info,
            |cert| {
                let (cn, groups) = subject_user(cert);
                if cn != ADMIN_USER || groups != [ADMIN_GROUP] {
                    Some("its subject is not admin/system:masters".to_string())
                } else {
                    None
                }
            },
            || issue_client(&ca_issuer, ADMIN_USER, &[ADMIN_GROUP]),
        )?;

        let service_account_key = crate::satoken::load_or_create_key(&paths.dir)?;

        Ok(Pki {
            ca_pem,
            ca_issuer,
            serving,
            admin,
            service_account_key,
        })
    }

    /// rustls server configuration: the serving certificate, ALPN `h2` and `http/1.1`,
    /// client certificates optional but verified against the CA when presented.
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        crate::tls::install_crypto_provider();
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(der.context("parsing the CA certificate")?)?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .context("building the client certificate verifier")?;

        let chain = CertificateDer::pem_slice_iter(self.serving.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("parsing the serving certificate")?;
        let key = PrivateKeyDer::from_pem_slice(self.serving.key_pem.as_bytes())
            .context("parsing the serving key")?;

        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .context("loading the serving certificate into TLS")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Write `DATA/admin.kubeconfig` (cluster `k8rs` with the CA and `server_url`, user
    /// `admin` with the client certificate, current context `k8rs`), atomically, mode 0600.
    pub fn write_admin_kubeconfig(
        &self,
        data_dir: &Path,
        server_url: &str,
    ) -> anyhow::Result<PathBuf> {
        let path = data_dir.join("admin.kubeconfig");
        let text = kubeconfig_yaml(
            "k8rs",
            server_url,
            &self.ca_pem,
            ADMIN_USER,
            &self.admin.cert_pem,
            &self.admin.key_pem,
        );
        write_file_atomic(&path, text.as_bytes(), 0o600)?;
        Ok(path)
    }

    /// PEM of the CA certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// PEM (PKCS#8) of the ServiceAccount token signing key, created with the PKI on first
    /// start and kept, so tokens survive restarts.
    pub fn service_account_key_pem(&self) -> &str {
        &self.service_account_key
    }

    /// PEM of the serving certificate.
    pub fn serving_cert_pem(&self) -> &str {
        &self.serving.cert_pem
    }

    /// Issue a client certificate signed by the CA (CN = user, O = groups, at most two):
    /// `(certificate PEM, key PEM)`.
    pub fn issue_client_cert(&self, cn: &str, groups: &[&str]) -> anyhow::Result<(String, String)> {
        let issued = issue_client(&self.ca_issuer, cn, groups)?;
        Ok((issued.cert_pem, issued.key_pem))
    }
}

/// A kubelet's TLS material, all PEM: its serving certificate and key, and the cluster CA
/// (which signs the API server's kubelet client certificate).
#[derive(Clone)]
pub struct KubeletTls {
    /// Serving certificate for the node's name and IPs.
    pub cert_pem: String,
    /// Its key.
    pub key_pem: String,
    /// The cluster CA.
    pub ca_pem: String,
}

/// User name of the certificate the API server presents to kubelets (as upstream's
/// `kube-apiserver-kubelet-client`).
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

impl Pki {
    /// Issue a kubelet serving certificate signed by the cluster CA: CN
    /// `system:node:<node>`, SANs the node name and `ips` (the API server dials the node's
    /// InternalIP and verifies it), as k3s does for its agents.
    pub fn issue_kubelet_serving_cert(
        &self,
        node_name: &str,
        ips: &[IpAddr],
    ) -> anyhow::Result<KubeletTls> {
        let mut sans: BTreeSet<San> = ips.iter().map(|ip| San::Ip(*ip)).collect();
        sans.insert(San::parse(node_name));
        let issued = issue_serving_as(&self.ca_issuer, &format!("system:node:{node_name}"), &sans)?;
        Ok(KubeletTls {
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
            ca_pem: self.ca_pem.clone(),
        })
    }

    /// rustls client configuration the API server dials kubelets with: trusts the cluster
    /// CA, presents a `kube-apiserver-kubelet-client` certificate (group
    /// `system:masters`), HTTP/1.1 only (exec and port-forward upgrade the connection).
    pub fn kubelet_client_config(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        crate::tls::install_crypto_provider();
        let (cert, key) = self.issue_client_cert(KUBELET_CLIENT_USER, &[ADMIN_GROUP])?;
        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(der.context("parsing the CA certificate")?)?;
        }
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("parsing the kubelet client certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).context("parsing its key")?;
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("loading the kubelet client certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Issue a kubelet's TLS material from the cluster CA under `DATA/pki/` (created by the
/// API server on its first start), for a kubelet running next to the server (`k8rs up`).
pub fn kubelet_tls(data_dir: &Path, node_name: &str, ips: &[IpAddr]) -> anyhow::Result<KubeletTls> {
    let paths = PkiPaths::new(data_dir);
    if !paths.ca_cert().exists() {
        bail!(
            "{} does not exist yet; start the API server first (it creates the cluster CA)",
            paths.ca_cert().display()
        );
    }
    let (ca_pem, ca_issuer) = load_or_create_ca(&paths)?;
    let mut sans: BTreeSet<San> = ips.iter().map(|ip| San::Ip(*ip)).collect();
    sans.insert(San::parse(node_name));
    let issued = issue_serving_as(&ca_issuer, &format!("system:node:{node_name}"), &sans)?;
    Ok(KubeletTls {
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
        ca_pem,
    })
}

/// A kubelet's client kubeconfig for `server_url`, with a certificate from the cluster CA
/// under `DATA/pki/` for user `system:node:<node>` in group `system:nodes` (upstream's
/// node identity, as `kubeadm init phase kubeconfig kubelet` writes it).
pub fn node_kubeconfig(
    data_dir: &Path,
    node_name: &str,
    server_url: &str,
) -> anyhow::Result<String> {
    let paths = PkiPaths::new(data_dir);
    if !paths.ca_cert().exists() {
        bail!(
            "{} does not exist yet; start the API server first (it creates the cluster CA)",
            paths.ca_cert().display()
        );
    }
    let (ca_pem, ca_issuer) = load_or_create_ca(&paths)?;
    let user = format!("system:node:{node_name}");
    let issued = issue_client(&ca_issuer, &user, &["system:nodes"])?;
    Ok(kubeconfig_yaml(
        "k8rs",
        server_url,
        &ca_pem,
        &user,
        &issued.cert_pem,
        &issued.key_pem,
    ))
}

/// A kubeconfig with one cluster, one user and one context named `name`.
fn kubeconfig_yaml(
    name: &str,
    server_url: &str,
    ca_pem: &str,
    user: &str,
    cert_pem: &str,
    key_pem: &str,
) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    // JSON strings are valid YAML double-quoted scalars, so quoting through serde_json is
    // safe for any URL or name.
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: {name}\n  \
           cluster:\n    \
             certificate-authority-data: {ca}\n    \
             server: {server}\n\
         users:\n\
         - name: {user}\n  \
           user:\n    \
             client-certificate-data: {cert}\n    \
             client-key-data: {key}\n\
         contexts:\n\
         - name: {name}\n  \
           context:\n    \
             cluster: {name}\n    \
             user: {user}\n\
         current-context: {name}\n\
         preferences: {{}}\n",
        name = q(name),
        user = q(user),
        server = q(server_url),
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

/// The SANs the serving certificate must carry.
fn serving_sans(bind_address: IpAddr, extra_sans: &[String]) -> BTreeSet<San> {
    let mut sans: BTreeSet<San> = [
        "127.0.0.1",
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .iter()
    .map(|s| San::parse(s))
    .collect();
    if let Some(host) = hostname::get().ok().and_then(|h| h.into_string().ok()) {
        // A host name that cannot be a DNS name is of no use in a certificate.
        if !host.is_empty() && host.is_ascii() {
            sans.insert(San::parse(&host));
        }
    }
    if !bind_address.is_unspecified() {
        sans.insert(San::Ip(bind_address));
    }
    for extra in extra_sans {
        if !extra.trim().is_empty() {
            sans.insert(San::parse(extra));
        }
    }
    sans
}

/// The DNS and IP SANs of a certificate.
fn cert_sans(cert: &x509_parser::certificate::X509Certificate<'_>) -> BTreeSet<San> {
    let mut out = BTreeSet::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    out.insert(San::Dns(dns.to_ascii_lowercase()));
                }
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        out.insert(San::Ip(ip));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Common name and organizations of a certificate's subject.
pub(crate) fn subject_user(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> (String, Vec<String>) {
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let groups = cert
        .subject()
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_string)
        .collect();
    (cn, groups)
}

/// What a leaf certificate is checked against: the CA's subject and key identifier.
struct CaInfo {
    subject_raw: Vec<u8>,
    key_id: Option<Vec<u8>>,
}

impl CaInfo {
    fn from_der(der: &[u8], path: &Path) -> anyhow::Result<CaInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
            anyhow!(
                "{} is not a valid certificate ({e}); restore it from a backup or remove {} to create a new cluster CA",
                path.display(),
                path.parent().unwrap_or(path).display()
            )
        })?;
        let key_id = cert
            .extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            });
        Ok(CaInfo {
            subject_raw: cert.subject().as_raw().to_vec(),
            key_id,
        })
    }

    /// Whether `cert` names this CA as its issuer.
    fn issued(&self, cert: &x509_parser::certificate::X509Certificate<'_>) -> bool {
        if cert.issuer().as_raw() != self.subject_raw.as_slice() {
            return false;
        }
        let aki = cert
            .extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|id| id.0.to_vec())
                }
                _ => None,
            });
        match (&self.key_id, aki) {
            (Some(ca), Some(leaf)) => *ca == leaf,
            _ => true,
        }
    }
}

fn load_or_create_ca(paths: &PkiPaths) -> anyhow::Result<(String, Issuer<'static, KeyPair>)> {
    let (cert_path, key_path) = (paths.ca_cert(), paths.ca_key());
    let cert = read_optional(&cert_path)?;
    let key = read_optional(&key_path)?;
    match (cert, key) {
        (Some(cert_pem), Some(key_pem)) => {
            let key = KeyPair::from_pem(&key_pem).map_err(|e| {
                anyhow!(
                    "{} is not a valid private key ({e}); restore it from a backup or remove {} to create a new cluster CA",
                    key_path.display(),
                    paths.dir.display()
                )
            })?;
            let der = pem_to_der(&cert_pem, &cert_path)?;
            let (_, parsed) = x509_parser::parse_x509_certificate(&der).map_err(|e| {
                anyhow!(
                    "{} is not a valid certificate ({e}); restore it from a backup or remove {} to create a new cluster CA",
                    cert_path.display(),
                    paths.dir.display()
                )
            })?;
            if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
                bail!(
                    "{} does not belong to {}; restore the matching pair or remove {} to create a new cluster CA",
                    key_path.display(),
                    cert_path.display(),
                    paths.dir.display()
                );
            }
            if !parsed.validity().is_valid() {
                bail!(
                    "the cluster CA {} has expired or is not yet valid; remove {} to create a new cluster CA (kubeconfigs must then be handed out again)",
                    cert_path.display(),
                    paths.dir.display()
                );
            }
            let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(der), key)
                .with_context(|| format!("reading the CA certificate {}", cert_path.display()))?;
            Ok((cert_pem, issuer))
        }
        (None, None) => {
            let key = KeyPair::generate().context("generating the CA key")?;
            let mut params = CertificateParams::default();
            params.distinguished_name = dn(CA_COMMON_NAME, &[])?;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
            ];
            set_validity(&mut params, CA_VALIDITY);
            let cert = params.self_signed(&key).context("signing the CA certificate")?;
            let cert_pem = cert.pem();
            write_file_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_file_atomic(&cert_path, cert_pem.as_bytes(), 0o644)?;
            tracing::info!(path = %cert_path.display(), "created cluster CA");
            Ok((cert_pem, Issuer::new(params, key)))
        }
        (Some(_), None) => bail!(
            "{} exists but its key {} is missing; restore the key or remove {} to create a new cluster CA",
            cert_path.display(),
            key_path.display(),
            paths.dir.display()
        ),
        (None, Some(_)) => bail!(
            "{} exists but its certificate {} is missing; restore the certificate or remove {} to create a new cluster CA",
            key_path.display(),
            cert_path.display(),
            paths.dir.display()
        ),
    }
}

/// Load a leaf certificate and key, or issue (and write) new ones when they are missing,
/// unreadable, not from this CA, close to expiry, or `stale` says why they no longer fit.
fn load_or_issue_leaf(
    cert_path: &Path,
    key_path: &Path,
    ca: &CaInfo,
    stale: impl Fn(&x509_parser::certificate::X509Certificate<'_>) -> Option<String>,
    issue: impl FnOnce() -> anyhow::Result<CertAndKey>,
) -> anyhow::Result<CertAndKey> {
    let cert = read_optional(cert_path)?;
    let key = read_optional(key_path)?;
    let reason = match (&cert, &key) {
        (Some(cert_pem), Some(key_pem)) => leaf_problem(cert_pem, key_pem, ca, &stale),
        _ => Some("it does not exist yet".to_string()),
    };
    match reason {
        None => Ok(CertAndKey {
            cert_pem: cert.unwrap_or_default(),
            key_pem: key.unwrap_or_default(),
        }),
        Some(reason) => {
            let issued = issue()?;
            write_file_atomic(key_path, issued.key_pem.as_bytes(), 0o600)?;
            write_file_atomic(cert_path, issued.cert_pem.as_bytes(), 0o644)?;
            tracing::info!(path = %cert_path.display(), %reason, "issued certificate");
            Ok(issued)
        }
    }
}

/// Why an existing leaf certificate must be reissued, if it must.
fn leaf_problem(
    cert_pem: &str,
    key_pem: &str,
    ca: &CaInfo,
    stale: &impl Fn(&x509_parser::certificate::X509Certificate<'_>) -> Option<String>,
) -> Option<String> {
    let Ok(der) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
        return Some("the certificate file could not be parsed".into());
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return Some("the certificate could not be parsed".into());
    };
    let Ok(key) = KeyPair::from_pem(key_pem) else {
        return Some("the key could not be parsed".into());
    };
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Some("the key does not match the certificate".into());
    }
    if !ca.issued(&cert) {
        return Some("it was not issued by the current CA".into());
    }
    let renew_at = OffsetDateTime::now_utc() + LEAF_RENEW_BEFORE;
    if cert.validity().not_after.timestamp() < renew_at.unix_timestamp() {
        return Some("it expires soon".into());
    }
    stale(&cert)
}

fn issue_serving(
    ca: &Issuer<'static, KeyPair>,
    sans: &BTreeSet<San>,
) -> anyhow::Result<CertAndKey> {
    issue_serving_as(ca, SERVING_COMMON_NAME, sans)
}

fn issue_serving_as(
    ca: &Issuer<'static, KeyPair>,
    cn: &str,
    sans: &BTreeSet<San>,
) -> anyhow::Result<CertAndKey> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn, &[])?;
    params.subject_alt_names = sans
        .iter()
        .map(|san| {
            Ok(match san {
                San::Ip(ip) => SanType::IpAddress(*ip),
                San::Dns(name) => SanType::DnsName(name.clone().try_into().map_err(|_| {
                    anyhow!("{name:?} cannot be a DNS name in a certificate; pass only ASCII host names or IP addresses")
                })?),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sign_leaf(params, ca)
}

fn issue_client(
    ca: &Issuer<'static, KeyPair>,
    cn: &str,
    groups: &[&str],
) -> anyhow::Result<CertAndKey> {
    if cn.is_empty() {
        bail!("a client certificate needs a non-empty common name (the user name)");
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn, groups)?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    sign_leaf(params, ca)
}

fn sign_leaf(
    mut params: CertificateParams,
    ca: &Issuer<'static, KeyPair>,
) -> anyhow::Result<CertAndKey> {
    set_validity(&mut params, LEAF_VALIDITY);
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().context("generating a key")?;
    let cert = params
        .signed_by(&key, ca)
        .context("signing a certificate")?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// OID of the X.509 `organizationName` attribute (2.5.4.10).
const ORGANIZATION_OID: [u64; 4] = [2, 5, 4, 10];

/// A subject with common name `cn` and up to two organizations (groups).
///
/// rcgen keeps one value per attribute type, so the second organization is written under
/// the same OID spelled as a custom type; both read back as `O` everywhere.
fn dn(cn: &str, organizations: &[&str]) -> anyhow::Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    let mut types = [
        DnType::OrganizationName,
        DnType::CustomDnType(ORGANIZATION_OID.to_vec()),
    ]
    .into_iter();
    for o in organizations {
        let Some(ty) = types.next() else {
            bail!(
                "a certificate can carry at most two groups, got {}",
                organizations.len()
            );
        };
        dn.push(ty, *o);
    }
    dn.push(DnType::CommonName, cn);
    Ok(dn)
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + validity;
    // A positive random 127-bit serial: unique without keeping a counter.
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
}

fn pem_to_der(pem: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|der| der.to_vec())
        .map_err(|e| {
            anyhow!(
                "{} holds no PEM certificate ({e}); restore it from a backup or remove {} to create new certificates",
                path.display(),
                path.parent().unwrap_or(path).display()
            )
        })
}

/// Create `dir` (and parents) with mode 0700 if missing.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    match fs::create_dir_all(dir) {
        Ok(()) => {}
        Err(e) => bail!(
            "cannot create {}: {}; make the data directory writable or pass --data-dir",
            dir.display(),
            io_reason(&e)
        ),
    }
    // Best effort: the directory may belong to someone else when it is shared read-only.
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    Ok(())
}

/// Read a file that may not exist yet.
fn read_optional(path: &Path) -> anyhow::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => bail!(
            "cannot read {}: {}; fix its permissions (run as the user that created it) or pass another --data-dir",
            path.display(),
            io_reason(&e)
        ),
    }
}

/// Write `bytes` to `path` through a temporary file and a rename, so readers never see
/// half a file, with the given mode from the start (keys are never world-readable).
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        anyhow!(
            "cannot write {}: {}; make {} writable or pass another --data-dir",
            path.display(),
            io_reason(&e),
            dir.display()
        )
    })
}

/// The reason of an I/O error without the "(os error N)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        ErrorKind::NotFound => "no such file or directory".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn parse(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn created_then_reloaded_keeps_the_ca_and_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let first = Pki::load_or_create(dir.path(), ip, &[]).unwrap();
        let second = Pki::load_or_create(dir.path(), ip, &[]).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());
        assert_eq!(first.serving.cert_pem, second.serving.cert_pem);
        assert_eq!(first.admin.cert_pem, second.admin.cert_pem);

        let ca_der = parse(first.ca_pem());
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(ca.is_ca());
        assert_eq!(subject_user(&ca).0, "k8rs-ca");

        for name in ["ca.key", "apiserver.key", "admin.key"] {
            let mode = fs::metadata(dir.path().join("pki").join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn serving_certificate_has_the_sans_and_is_reissued_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let bind = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        let pki = Pki::load_or_create(dir.path(), bind, &["api.example.com".into()]).unwrap();
        let der = parse(&pki.serving.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let sans = cert_sans(&cert);
        for want in [
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "10.1.2.3",
            "api.example.com",
        ] {
            assert!(
                sans.contains(&San::parse(want)),
                "missing SAN {want}: {sans:?}"
            );
        }
        let ca = CaInfo::from_der(&parse(pki.ca_pem()), Path::new("ca.crt")).unwrap();
        assert!(ca.issued(&cert));

        // Same SANs: kept. Another SAN: reissued by the same CA.
        let same = Pki::load_or_create(dir.path(), bind, &["api.example.com".into()]).unwrap();
        assert_eq!(same.serving.cert_pem, pki.serving.cert_pem);
        let changed = Pki::load_or_create(dir.path(), bind, &["other.example.com".into()]).unwrap();
        assert_ne!(changed.serving.cert_pem, pki.serving.cert_pem);
        assert_eq!(changed.ca_pem(), pki.ca_pem());
        let der = parse(&changed.serving.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(cert_sans(&cert).contains(&San::parse("other.example.com")));
        assert!(!cert_sans(&cert).contains(&San::parse("api.example.com")));
    }

    #[test]
    fn unspecified_bind_address_is_not_a_san() {
        let sans = serving_sans(IpAddr::V4(Ipv4Addr::UNSPECIFIED), &[]);
        assert!(!sans.contains(&San::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED))));
        assert!(sans.contains(&San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))));
    }

    #[test]
    fn admin_and_issued_client_certificates_carry_user_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST), &[]).unwrap();
        let der = parse(&pki.admin.cert_pem);
        let (_, admin) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            subject_user(&admin),
            ("admin".to_string(), vec!["system:masters".to_string()])
        );

        let (cert, key) = pki
            .issue_client_cert("system:node:n1", &["system:nodes", "extra"])
            .unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let der = parse(&cert);
        let (_, node) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            subject_user(&node),
            (
                "system:node:n1".to_string(),
                vec!["system:nodes".to_string(), "extra".to_string()]
            )
        );
        let ca = CaInfo::from_der(&parse(pki.ca_pem()), Path::new("ca.crt")).unwrap();
        assert!(ca.issued(&node));
    }

    #[test]
    fn client_certificates_carry_at_most_two_groups() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST), &[]).unwrap();
        let err = pki.issue_client_cert("u", &["a", "b", "c"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a certificate can carry at most two groups, got 3"
        );
        assert!(pki.issue_client_cert("", &[]).is_err());
    }

    #[test]
    fn missing_ca_key_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        Pki::load_or_create(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST), &[]).unwrap();
        fs::remove_file(dir.path().join("pki/ca.key")).unwrap();
        let err =
            Pki::load_or_create(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST), &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ca.key is missing"), "{msg}");
        assert!(msg.contains("remove"), "{msg}");
    }

    #[test]
    fn kubeconfig_has_what_kubectl_needs() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST), &[]).unwrap();
        let path = pki
            .write_admin_kubeconfig(dir.path(), "https://127.0.0.1:6443")
            .unwrap();
        assert_eq!(path, dir.path().join("admin.kubeconfig"));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let text = fs::read_to_string(&path).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let b64 = |v: &serde_json::Value| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(doc["kind"], "Config");
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["current-context"], "k8rs");
        let cluster = &doc["clusters"][0];
        assert_eq!(cluster["name"], "k8rs");
        assert_eq!(cluster["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(
            b64(&cluster["cluster"]["certificate-authority-data"]),
            pki.ca_pem()
        );
        let user = &doc["users"][0];
        assert_eq!(user["name"], "admin");
        assert_eq!(
            b64(&user["user"]["client-certificate-data"]),
            pki.admin.cert_pem
        );
        assert_eq!(b64(&user["user"]["client-key-data"]), pki.admin.key_pem);
        let context = &doc["contexts"][0];
        assert_eq!(context["name"], "k8rs");
        assert_eq!(context["context"]["cluster"], "k8rs");
        assert_eq!(context["context"]["user"], "admin");
    }
}
