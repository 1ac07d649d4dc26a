//! stack as a Docker CLI plugin, so that where the `docker` client is
//! installed `docker compose ...` runs stack: installed as `docker-compose`
//! in a `cli-plugins` directory, it answers the client's metadata handshake
//! (`docker-cli-plugin-metadata`, a JSON object), and is then run with the
//! plugin's name first (`docker-compose compose up -d`), which is dropped.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

/// What the docker client runs a plugin with to learn what it is.
pub const METADATA_COMMAND: &str = "docker-cli-plugin-metadata";

/// The name the client finds the plugin by, and the command it adds.
const PLUGIN_FILE: &str = "docker-compose";
const PLUGIN_COMMAND: &str = "compose";

/// Where `--system` installs (a directory the client searches).
const SYSTEM_DIR: &str = "/usr/libexec/docker/cli-plugins";

#[derive(Debug, Subcommand)]
pub enum DockerPluginCommand {
    /// Make `docker compose` run this stack binary (a symlink named
    /// `docker-compose` in the user's or the system's plugin directory).
    Install(InstallArgs),
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Into /usr/libexec/docker/cli-plugins, for every user.
    #[arg(long, conflicts_with = "dir")]
    pub system: bool,
    /// Into this directory instead (default: $DOCKER_CONFIG/cli-plugins or
    /// ~/.docker/cli-plugins).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The handshake's answer.
pub fn metadata() -> String {
    serde_json::json!({
        "SchemaVersion": "0.1.0",
        "Vendor": "stack",
        "Version": super::version::VERSION,
        "ShortDescription": "Compose-style multi-container stacks on one Linux host (stack)",
    })
    .to_string()
}

/// The arguments as stack parses them: run by the docker client (as
/// `docker-compose`, or with the client's plugin variable set), its
/// leading `compose` is the plugin's name, not a stack command.
pub fn arguments(mut args: Vec<OsString>, by_client: bool) -> Vec<OsString> {
    let named = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n == PLUGIN_FILE);
    if (named || by_client) && args.get(1).is_some_and(|a| a == PLUGIN_COMMAND) {
        args.remove(1);
    }
    args
}

/// Whether the docker client started this process as its plugin.
pub fn run_by_client() -> bool {
    std::env::var_os("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND").is_some()
}

fn user_dir() -> anyhow::Result<PathBuf> {
    if let Some(config) = std::env::var_os("DOCKER_CONFIG") {
        return Ok(PathBuf::from(config).join("cli-plugins"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set: name a --dir")?;
    Ok(PathBuf::from(home).join(".docker/cli-plugins"))
}

pub fn run(cmd: DockerPluginCommand) -> anyhow::Result<ExitCode> {
    let DockerPluginCommand::Install(args) = cmd;
    let dir = match (&args.dir, args.system) {
        (Some(d), _) => d.clone(),
        (None, true) => PathBuf::from(SYSTEM_DIR),
        (None, false) => user_dir()?,
    };
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("finding this stack binary")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = dir.join(PLUGIN_FILE);
    // A link made beside and renamed over: an earlier plugin is replaced
    // whole, never left missing.
    let tmp = dir.join(format!(".{PLUGIN_FILE}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&exe, &tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    std::fs::rename(&tmp, &target).with_context(|| format!("installing {}", target.display()))?;
    println!("{} -> {}", target.display(), exe.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_plugin_name_is_dropped_only_when_run_as_the_plugin() {
        assert_eq!(
            arguments(args(&["/x/docker-compose", "compose", "up"]), false),
            args(&["/x/docker-compose", "up"])
        );
        assert_eq!(
            arguments(args(&["stack", "compose", "up"]), true),
            args(&["stack", "up"])
        );
        assert_eq!(
            arguments(args(&["stack", "compose", "up"]), false),
            args(&["stack", "compose", "up"])
        );
        let meta: serde_json::Value = serde_json::from_str(&metadata()).unwrap();
        assert_eq!(meta["SchemaVersion"], "0.1.0");
    }
}
