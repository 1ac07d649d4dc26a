//! The build's network: `RUN` steps on the default network join a bridge of
//! the build's own, with NAT (stack-net's nft masquerade) and its DNS, so
//! package managers reach their registries as in any user's build while the
//! host's loopback services stay out of reach. The network is made by the
//! first step that needs it and removed when the build ends, failed or not;
//! one that a crashed process left is named after that process (pid and
//! start time), and the next build removes it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use stack_net::{AttachRequest, NetError, NetOptions, NetworkAttachment, NetworkManager};

/// Where build networks are recorded and take their subnets from.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The run directory (`--run-dir`): network namespaces are pinned there.
    pub run_dir: PathBuf,
    pub options: NetOptions,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            run_dir: PathBuf::from("/run/stack"),
            options: NetOptions::default(),
        }
    }
}

/// The name every build network's project starts with.
const PREFIX: &str = "_build-";
/// The one network of a build's project.
const NETWORK: &str = "default";

/// Builds of this process so far: each gets a project of its own.
static BUILDS: AtomicUsize = AtomicUsize::new(0);

/// `_build-<pid>-<start time>-<n>`: whose it is, so a later build can tell a
/// crashed owner's from a running one's.
fn project_name() -> String {
    let pid = std::process::id() as i32;
    let start = stack_runtime::state::proc_stat(pid).map_or(0, |s| s.start_time);
    let n = BUILDS.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{pid}-{start}-{n}")
}

/// Whether the build network `project` belongs to a process that is gone.
fn is_stale(project: &str) -> bool {
    let Some(rest) = project.strip_prefix(PREFIX) else {
        return false;
    };
    let mut parts = rest.split('-');
    match (
        parts.next().and_then(|p| p.parse::<i32>().ok()),
        parts.next().and_then(|s| s.parse::<u64>().ok()),
    ) {
        (Some(pid), Some(start)) => !stack_runtime::state::is_alive(pid, start),
        _ => false,
    }
}

/// A bridge network with NAT for one build; removed on drop.
pub struct BuildNetwork {
    manager: NetworkManager,
    project: String,
    /// Drives the network's DNS server between steps; last to go.
    runtime: tokio::runtime::Runtime,
}

/// A step's place on the build network: its namespace and resolver.
pub struct Joined<'n> {
    network: &'n BuildNetwork,
    id: String,
    pub netns: PathBuf,
    pub resolv_conf: String,
}

impl BuildNetwork {
    /// Makes the bridge, its address, NAT rules and DNS server, after
    /// removing build networks whose process is gone.
    pub fn create(root: &Path, config: &NetConfig) -> Result<Self, NetError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("build-net")
            .enable_all()
            .build()
            .map_err(|source| NetError::Thread {
                what: "build network runtime",
                source,
            })?;
        let manager = NetworkManager::new(root, &config.run_dir, config.options.clone());
        let project = project_name();
        runtime.block_on(async {
            for stale in manager.projects().await? {
                if is_stale(&stale) {
                    tracing::info!(project = %stale, "removing a crashed build's network");
                    manager.cleanup_project(&stale).await?;
                }
            }
            Ok::<_, NetError>(())
        })?;
        let network = Self {
            manager,
            project,
            runtime,
        };
        network.runtime.block_on(network.manager.ensure_network(
            &network.project,
            NETWORK,
            &Default::default(),
        ))?;
        Ok(network)
    }

    /// Connects the step `id` (a namespace of its own, an address on the
    /// bridge, the default route through it); disconnected on drop.
    pub fn join(&self, id: &str) -> Result<Joined<'_>, NetError> {
        let request = AttachRequest {
            project: self.project.clone(),
            container_id: id.to_owned(),
            container_name: id.to_owned(),
            service: "build".into(),
            hostname: Some("stack-build".into()),
            networks: vec![NetworkAttachment {
                network: NETWORK.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let attachment = self.runtime.block_on(self.manager.attach(&request))?;
        Ok(Joined {
            network: self,
            id: id.to_owned(),
            netns: attachment.netns,
            resolv_conf: attachment.resolv_conf,
        })
    }
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        let n = self.network;
        if let Err(e) = n.runtime.block_on(n.manager.forget(&self.id)) {
            tracing::warn!(step = %self.id, error = %e, "leaving the build network failed");
        }
    }
}

impl Drop for BuildNetwork {
    fn drop(&mut self) {
        if let Err(e) = self
            .runtime
            .block_on(self.manager.cleanup_project(&self.project))
        {
            tracing::warn!(project = %self.project, error = %e, "removing the build network failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_process_and_only_dead_ones_are_stale() {
        let name = project_name();
        assert!(name.starts_with(PREFIX), "{name}");
        assert!(!is_stale(&name), "this process is alive: {name}");
        assert_ne!(name, project_name());
        // Start time 1 is no live process's.
        assert!(is_stale(&format!("{PREFIX}{}-1-0", std::process::id())));
        assert!(!is_stale("web"));
        assert!(!is_stale("_build-garbage"));
    }
}
