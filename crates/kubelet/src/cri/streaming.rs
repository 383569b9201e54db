//! Exec and streaming: `ExecSync` (probes, hooks) and the streaming-server URLs of
//! `Exec`, `Attach` and `PortForward` that the kubelet proxies to.

use std::time::Duration;

use super::{error, pb, request, with_timeout, CriRuntime};
use crate::runtime::{ExecResult, Result, StreamRequest};

impl CriRuntime {
    /// Runs `cmd` in the container and waits up to `timeout` (0 = no limit) for it.
    pub(super) async fn exec(
        &self,
        container_id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult> {
        let message = pb::ExecSyncRequest {
            container_id: container_id.to_string(),
            cmd: cmd.to_vec(),
            // CRI counts whole seconds; round up so a sub-second timeout is not "none".
            timeout: timeout.as_secs_f64().ceil() as i64,
        };
        // The gRPC deadline outlives the runtime's own timeout so the runtime reports it.
        let call = if timeout.is_zero() {
            tonic::Request::new(message)
        } else {
            with_timeout(message, timeout + Duration::from_secs(5))
        };
        let response = self
            .runtime_client()
            .exec_sync(call)
            .await
            .map_err(error)?
            .into_inner();
        Ok(ExecResult {
            stdout: response.stdout,
            stderr: response.stderr,
            exit_code: response.exit_code,
        })
    }

    pub(super) async fn streaming_url(&self, stream: &StreamRequest) -> Result<String> {
        let mut client = self.runtime_client();
        let url = match stream {
            StreamRequest::Exec {
                container_id,
                cmd,
                stdin,
                stdout,
                stderr,
                tty,
            } => {
                client
                    .exec(request(pb::ExecRequest {
                        container_id: container_id.clone(),
                        cmd: cmd.clone(),
                        tty: *tty,
                        stdin: *stdin,
                        stdout: *stdout,
                        stderr: *stderr,
                    }))
                    .await
                    .map_err(error)?
                    .into_inner()
                    .url
            }
            StreamRequest::Attach {
                container_id,
                stdin,
                stdout,
                stderr,
                tty,
            } => {
                client
                    .attach(request(pb::AttachRequest {
                        container_id: container_id.clone(),
                        stdin: *stdin,
                        tty: *tty,
                        stdout: *stdout,
                        stderr: *stderr,
                    }))
                    .await
                    .map_err(error)?
                    .into_inner()
                    .url
            }
            StreamRequest::PortForward { sandbox_id, ports } => {
                client
                    .port_forward(request(pb::PortForwardRequest {
                        pod_sandbox_id: sandbox_id.clone(),
                        port: ports.clone(),
                    }))
                    .await
                    .map_err(error)?
                    .into_inner()
                    .url
            }
        };
        Ok(url)
    }
}
