//! containerd as the node's runtime, the way k3s embeds it: its own configuration, root,
//! state and socket under the data directory ([`config`]), the CNI network it gives pods
//! ([`config::cni_conflist`]), a supervised child process restarted if it dies
//! ([`process`]), and the offline images imported from a directory at start
//! ([`images`]).

pub mod config;
pub mod images;
pub mod process;

pub use config::{ContainerdConfig, CNI_BIN_DIRS, CNI_PLUGINS};
pub use process::Containerd;
