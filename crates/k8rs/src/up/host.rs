//! What `k8rs up` needs from the host, checked before anything starts, each missing
//! piece reported as one line naming the Debian package that provides it.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};

use anyhow::bail;

/// The programs `up` runs, with where they were found.
#[derive(Debug)]
pub struct HostTools {
    /// `containerd`.
    pub containerd: PathBuf,
    /// `ctr` (image import).
    pub ctr: PathBuf,
    /// The directory holding the CNI plugins.
    pub cni_bin_dir: PathBuf,
}

/// Root first (everything else needs it), then the packages.
pub fn check() -> anyhow::Result<HostTools> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    check_with(
        root,
        &search_path(),
        &k8rs_kubelet::containerd::CNI_BIN_DIRS.map(PathBuf::from),
    )
}

fn check_with(root: bool, path: &[PathBuf], cni_dirs: &[PathBuf]) -> anyhow::Result<HostTools> {
    if !root {
        bail!("k8rs up must run as root (it starts containerd and sets up pod networking); run it with sudo");
    }
    let find = |binary: &str, package: &str| match path
        .iter()
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
    {
        Some(found) => Ok(found),
        None => bail!("{binary} is not installed; install it with: apt-get install {package}"),
    };
    let containerd = find("containerd", "containerd")?;
    let ctr = find("ctr", "containerd")?;
    find("runc", "runc")?;
    // The bridge plugin's ipMasq and the portmap plugin program iptables.
    find("iptables", "iptables")?;
    let plugins = k8rs_kubelet::containerd::CNI_PLUGINS;
    let Some(cni_bin_dir) = cni_dirs
        .iter()
        .find(|dir| plugins.iter().all(|p| dir.join(p).is_file()))
        .cloned()
    else {
        bail!(
            "the CNI plugins ({}) are not in {}; install them with: apt-get install containernetworking-plugins",
            plugins.join(", "),
            cni_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" or ")
        );
    };
    Ok(HostTools {
        containerd,
        ctr,
        cni_bin_dir,
    })
}

/// `$PATH`, plus the sbin directories a non-login root shell may lack.
fn search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !dirs.iter().any(|d| d == Path::new(extra)) {
            dirs.push(PathBuf::from(extra));
        }
    }
    dirs
}

/// The node's address: the source address of the default route (found by "connecting"
/// a UDP socket, which sends nothing), else the first non-loopback IPv4 address.
pub fn node_ip() -> anyhow::Result<IpAddr> {
    let routed = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).map(|()| s))
        .and_then(|s| s.local_addr());
    if let Ok(addr) = routed {
        if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
            return Ok(addr.ip());
        }
    }
    match first_interface_ipv4() {
        Some(ip) => Ok(IpAddr::V4(ip)),
        None => bail!("cannot find the node's address (no default route, no non-loopback IPv4 address); pass --node-ip"),
    }
}

fn first_interface_ipv4() -> Option<Ipv4Addr> {
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `addrs` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut addrs) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cursor = addrs;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cursor };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family we check before the cast.
            let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
            if family == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() {
                    found = Some(ip);
                    break;
                }
            }
        }
        cursor = ifa.ifa_next;
    }
    // SAFETY: freeing the list getifaddrs allocated, once.
    unsafe { libc::freeifaddrs(addrs) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake host: `bin/` holds the named programs, `cni/` the named plugins.
    fn host(binaries: &[&str], plugins: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("cni")).unwrap();
        for b in binaries {
            std::fs::write(dir.path().join("bin").join(b), "").unwrap();
        }
        for p in plugins {
            std::fs::write(dir.path().join("cni").join(p), "").unwrap();
        }
        dir
    }

    fn check_on(dir: &tempfile::TempDir, root: bool) -> Result<HostTools, String> {
        check_with(root, &[dir.path().join("bin")], &[dir.path().join("cni")])
            .map_err(|e| e.to_string())
    }

    const ALL: [&str; 4] = ["containerd", "ctr", "runc", "iptables"];

    #[test]
    fn a_complete_host_passes() {
        let dir = host(&ALL, &["bridge", "host-local", "portmap", "loopback"]);
        let tools = check_on(&dir, true).unwrap();
        assert_eq!(tools.containerd, dir.path().join("bin/containerd"));
        assert_eq!(tools.cni_bin_dir, dir.path().join("cni"));
    }

    #[test]
    fn each_missing_piece_names_its_package() {
        let full = ["bridge", "host-local", "portmap"];
        let dir = host(&ALL, &full);
        assert_eq!(
            check_on(&dir, false).unwrap_err(),
            "k8rs up must run as root (it starts containerd and sets up pod networking); run it with sudo"
        );
        for (missing, package) in [
            ("containerd", "containerd"),
            ("runc", "runc"),
            ("iptables", "iptables"),
        ] {
            let present: Vec<_> = ALL.iter().copied().filter(|b| *b != missing).collect();
            let err = check_on(&host(&present, &full), true).unwrap_err();
            assert_eq!(
                err,
                format!("{missing} is not installed; install it with: apt-get install {package}")
            );
        }
        let err = check_on(&host(&ALL, &["bridge", "portmap"]), true).unwrap_err();
        assert!(
            err.starts_with("the CNI plugins (bridge, host-local, portmap) are not in "),
            "{err}"
        );
        assert!(
            err.ends_with("; install them with: apt-get install containernetworking-plugins"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn the_node_address_is_not_loopback() {
        if let Ok(ip) = node_ip() {
            assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
        }
    }
}
