//! Commands run in a project's running containers by a command rather than
//! by its supervisor: the `exec` action of `stack watch`, which goes on
//! while the stack file is broken and its supervisor may be busy.

use std::sync::Arc;
use std::time::Duration;

use stack_spec::Project;

use crate::error::EngineError;
use crate::host::{Host, HostConfig};

/// Runs commands in the containers of one project.
pub struct ContainerExec {
    host: Arc<Host>,
}

impl ContainerExec {
    /// For the project `project`; only its name is needed (its records),
    /// not its file.
    pub fn new(config: HostConfig, project: &str) -> Result<Self, EngineError> {
        let named = Project {
            name: project.to_owned(),
            ..Project::default()
        };
        Ok(ContainerExec {
            host: Host::new(config, named)?,
        })
    }

    /// Runs `argv` in the container `name`, at most `timeout`; returns its
    /// exit code (-1 when its process was not ours to reap) and output.
    pub async fn capture(
        &self,
        name: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<(i32, String), String> {
        self.host.exec_capture(name, argv, timeout).await
    }
}
