//! `GET /containerLogs/{ns}/{pod}/{container}`: container logs from the CRI log files
//! the runtime writes (`<RFC3339Nano> <stdout|stderr> <F|P> <content>` per line, `P` for a
//! partial line continued by the next entry), with upstream's options: `follow`,
//! `previous`, `timestamps`, `tailLines`, `limitBytes`, `sinceSeconds`, `sinceTime`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, FixedOffset, Utc};
use http::StatusCode;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::{text_error, Kubelet};
use crate::runtime::{ContainerState, Runtime};

/// How often a followed log is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Log request options (upstream's `PodLogOptions` as the kubelet receives them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// Keep streaming new lines until the container stops.
    pub follow: bool,
    /// The previous (terminated) instance of the container.
    pub previous: bool,
    /// Prefix every line with its RFC3339Nano timestamp.
    pub timestamps: bool,
    /// Only the last N lines of the file.
    pub tail_lines: Option<u64>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl LogOptions {
    /// Parse the query string; errors are upstream-worded 400 messages.
    pub fn from_query(query: &str, now: DateTime<Utc>) -> Result<LogOptions, String> {
        let mut o = LogOptions::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let flag = || v == "true" || v == "1";
            let num = |name: &str| -> Result<i64, String> {
                v.parse::<i64>()
                    .map_err(|_| format!("Invalid value {v:?} for {name}"))
            };
            match &*k {
                "follow" => o.follow = flag(),
                "previous" => o.previous = flag(),
                "timestamps" => o.timestamps = flag(),
                "tailLines" => {
                    let n = num("tailLines")?;
                    if n < 0 {
                        return Err(
                            "tailLines: Invalid value: must be greater than or equal to 0".into(),
                        );
                    }
                    o.tail_lines = Some(n as u64);
                }
                "limitBytes" => {
                    let n = num("limitBytes")?;
                    if n < 1 {
                        return Err("limitBytes: Invalid value: must be greater than 0".into());
                    }
                    o.limit_bytes = Some(n as u64);
                }
                "sinceSeconds" => {
                    let n = num("sinceSeconds")?;
                    if n < 1 {
                        return Err("sinceSeconds: Invalid value: must be greater than 0".into());
                    }
                    o.since = Some(now - chrono::Duration::seconds(n));
                }
                "sinceTime" => {
                    let t = DateTime::parse_from_rfc3339(&v)
                        .map_err(|_| format!("Invalid value {v:?} for sinceTime"))?;
                    o.since = Some(t.with_timezone(&Utc));
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

/// One parsed CRI log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The timestamp as written (Go's RFC3339Nano, which is also what upstream prints).
    pub timestamp: &'a str,
    /// The timestamp parsed.
    pub time: DateTime<FixedOffset>,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// A partial line: its content continues in the next entry.
    pub partial: bool,
    /// The content, with its newline for full lines.
    pub content: &'a [u8],
}

/// Parse one line of a CRI log file (including its trailing newline, if any).
pub fn parse_line(line: &[u8]) -> Result<Entry<'_>, String> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = parts.next().ok_or("timestamp is not found")?;
    let stream = parts.next().ok_or("stream type is not found")?;
    let tag = parts.next().ok_or("log tag is not found")?;
    let mut content = parts.next().ok_or("log tag is not found")?;
    let timestamp = std::str::from_utf8(ts).map_err(|_| "unexpected timestamp")?;
    let time = DateTime::parse_from_rfc3339(timestamp)
        .map_err(|e| format!("unexpected timestamp format {timestamp:?}: {e}"))?;
    let stream = match stream {
        b"stdout" => "stdout",
        b"stderr" => "stderr",
        other => {
            return Err(format!(
                "unexpected stream type {:?}",
                String::from_utf8_lossy(other)
            ))
        }
    };
    // Tags are `F` or `P`, possibly followed by more `:`-separated ones.
    let partial = tag.split(|b| *b == b':').next() == Some(b"P");
    if partial && content.last() == Some(&b'\n') {
        content = &content[..content.len() - 1];
    }
    Ok(Entry {
        timestamp,
        time,
        stream,
        partial,
        content,
    })
}

/// Turns entries into the bytes a client receives, keeping the state upstream's
/// `logWriter` keeps: whether the next entry starts a line, and the bytes left.
pub struct Renderer {
    timestamps: bool,
    since: Option<DateTime<Utc>>,
    remaining: Option<u64>,
    line_start: bool,
}

impl Renderer {
    /// A renderer for `opts`.
    pub fn new(opts: &LogOptions) -> Renderer {
        Renderer {
            timestamps: opts.timestamps,
            since: opts.since,
            remaining: opts.limit_bytes,
            line_start: true,
        }
    }

    /// Render the complete lines in `data` into `out`; `false` once `limitBytes` is used up.
    /// Lines that do not parse are skipped (upstream logs and skips them too).
    pub fn render(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        for line in data.split_inclusive(|b| *b == b'\n') {
            let Ok(e) = parse_line(line) else { continue };
            let add_prefix = self.line_start;
            self.line_start = !e.partial;
            if self.since.is_some_and(|s| e.time < s) {
                continue;
            }
            let start = out.len();
            if self.timestamps && add_prefix {
                out.extend_from_slice(e.timestamp.as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(e.content);
            if let Some(rem) = self.remaining.as_mut() {
                let written = (out.len() - start) as u64;
                if written >= *rem {
                    out.truncate(start + *rem as usize);
                    *rem = 0;
                    return false;
                }
                *rem -= written;
            }
        }
        true
    }
}

/// The byte offset where the last `n` lines of `data` start.
pub fn tail_start(data: &[u8], n: u64) -> usize {
    if n == 0 {
        return data.len();
    }
    // A final line without newline counts as a line.
    let mut end = data.len();
    if data.last() == Some(&b'\n') {
        end -= 1;
    }
    let mut seen = 0u64;
    for i in (0..end).rev() {
        if data[i] == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

/// The log file of a container instance, in upstream's layout.
pub fn log_path(
    root: &Path,
    ns: &str,
    pod: &str,
    uid: &str,
    container: &str,
    attempt: u32,
) -> PathBuf {
    root.join(format!("{ns}_{pod}_{uid}"))
        .join(container)
        .join(format!("{attempt}.log"))
}

/// Upstream's `validateContainerLogStatus`: which container instance to read, or the
/// reason there is none (a 400 message).
pub fn pick_container(pod: &Pod, container: &str, previous: bool) -> Result<String, String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref();
    let find = |list: Option<&Vec<ContainerStatus>>| {
        list.and_then(|l| l.iter().find(|c| c.name == container).cloned())
    };
    let cs = find(status.and_then(|s| s.container_statuses.as_ref()))
        .or_else(|| find(status.and_then(|s| s.init_container_statuses.as_ref())))
        .or_else(|| find(status.and_then(|s| s.ephemeral_container_statuses.as_ref())))
        .ok_or_else(|| format!("container {container:?} in pod {pod_name:?} is not available"))?;
    let last_terminated = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.container_id.clone())
        .filter(|id| !id.is_empty());
    let state = cs.state.clone().unwrap_or_default();
    let terminated_msg = || format!("container {container:?} in pod {pod_name:?} is terminated");
    let id = if previous {
        last_terminated.ok_or_else(|| {
            format!("previous terminated container {container:?} in pod {pod_name:?} not found")
        })?
    } else if state.running.is_some() {
        cs.container_id.clone().unwrap_or_default()
    } else if let Some(t) = &state.terminated {
        match t.container_id.clone().filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => last_terminated.ok_or_else(terminated_msg)?,
        }
    } else if cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .is_some()
    {
        last_terminated.ok_or_else(terminated_msg)?
    } else if let Some(w) = &state.waiting {
        let reason = w.reason.as_deref().unwrap_or("");
        return Err(match reason {
            "ErrImagePull" => format!("container {container:?} in pod {pod_name:?} is waiting to start: image can't be pulled"),
            "ImagePullBackOff" => format!("container {container:?} in pod {pod_name:?} is waiting to start: trying and failing to pull image"),
            _ => format!("container {container:?} in pod {pod_name:?} is waiting to start: {reason}"),
        });
    } else {
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start - no logs yet"
        ));
    };
    // `containerd://<id>` → `<id>`.
    Ok(id
        .split_once("://")
        .map(|(_, id)| id.to_string())
        .unwrap_or(id))
}

/// The log file of container instance `id`: from its restart attempt when the runtime
/// still knows it, else the newest (or, for `previous`, second newest) file.
async fn find_log_file(
    runtime: &Arc<dyn Runtime>,
    dir: &Path,
    id: &str,
    previous: bool,
) -> Option<PathBuf> {
    if let Ok(status) = runtime.container_status(id).await {
        let p = dir.join(format!("{}.log", status.attempt));
        if p.exists() {
            return Some(p);
        }
    }
    let mut attempts: Vec<u32> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    attempts.sort_unstable();
    let pick = if previous {
        attempts.iter().rev().nth(1)
    } else {
        attempts.last()
    }?;
    Some(dir.join(format!("{pick}.log")))
}

/// The handler.
pub async fn container_logs(
    State(k): State<Arc<Kubelet>>,
    UrlPath((ns, pod_name, container)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let opts = match LogOptions::from_query(query.as_deref().unwrap_or(""), Utc::now()) {
        Ok(o) => o,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e),
    };
    let Some(pod) = k.config.pods.pod(&ns, &pod_name).await else {
        return text_error(
            StatusCode::NOT_FOUND,
            format!("pod {pod_name:?} does not exist"),
        );
    };
    let id = match pick_container(&pod, &container, opts.previous) {
        Ok(id) => id,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e),
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let dir = log_path(&k.config.log_root, &ns, &pod_name, &uid, &container, 0)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let runtime = k.config.runtime.clone();
    let Some(path) = find_log_file(&runtime, &dir, &id, opts.previous).await else {
        return text_error(
            StatusCode::BAD_REQUEST,
            format!(
                "failed to try resolving symlinks in path {:?}: no such file or directory",
                dir.display().to_string()
            ),
        );
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    // Only follow a container that is still running (upstream stops at its exit too).
    let follow = opts.follow && !opts.previous;
    tokio::spawn(async move {
        if let Err(e) = stream_file(&path, &opts, follow, &runtime, &id, &tx).await {
            tracing::debug!(error = %e, path = %path.display(), "reading container log");
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap_or_else(|_| text_error(StatusCode::INTERNAL_SERVER_ERROR, "log response"))
}

async fn still_running(runtime: &Arc<dyn Runtime>, id: &str) -> bool {
    matches!(
        runtime.container_status(id).await,
        Ok(s) if s.state == ContainerState::Running
    )
}

async fn stream_file(
    path: &Path,
    opts: &LogOptions,
    follow: bool,
    runtime: &Arc<dyn Runtime>,
    id: &str,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> std::io::Result<()> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut data = Vec::new();
    file.read_to_end(&mut data).await?;
    let start = opts.tail_lines.map(|n| tail_start(&data, n)).unwrap_or(0);
    let mut renderer = Renderer::new(opts);
    // Complete lines only; a trailing fragment waits for its newline while following.
    let complete = if follow {
        data.iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0)
            .max(start)
    } else {
        data.len()
    };
    let mut out = Vec::new();
    let more = renderer.render(&data[start..complete], &mut out);
    if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
        return Ok(());
    }
    if !more || !follow {
        return Ok(());
    }
    let mut pending: Vec<u8> = data[complete..].to_vec();
    let mut idle_polls = 0u32;
    loop {
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk).await?;
        if chunk.is_empty() {
            idle_polls += 1;
            // Every second of silence, check whether the container has exited.
            if idle_polls.is_multiple_of(10) && !still_running(runtime, id).await {
                // One last read for lines written just before the exit.
                file.read_to_end(&mut pending).await?;
                let mut out = Vec::new();
                renderer.render(&pending, &mut out);
                if !out.is_empty() {
                    let _ = tx.send(Ok(Bytes::from(out))).await;
                }
                return Ok(());
            }
            if tx.is_closed() {
                return Ok(());
            }
            tokio::time::sleep(FOLLOW_POLL).await;
            continue;
        }
        idle_polls = 0;
        pending.extend_from_slice(&chunk);
        let Some(last_nl) = pending.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        let rest = pending.split_off(last_nl + 1);
        let mut out = Vec::new();
        let more = renderer.render(&pending, &mut out);
        pending = rest;
        if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
            return Ok(());
        }
        if !more {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2024-05-01T10:00:00.1Z stdout F first\n\
                       2024-05-01T10:00:01.2Z stderr F second\n\
                       2024-05-01T10:00:02.3Z stdout P par\n\
                       2024-05-01T10:00:02.4Z stdout F tial\n\
                       2024-05-01T10:00:03.5Z stdout F \n\
                       2024-05-01T10:00:04.123456789Z stdout F last\n";

    fn render(opts: &LogOptions, data: &str) -> String {
        let mut out = Vec::new();
        let start = opts
            .tail_lines
            .map(|n| tail_start(data.as_bytes(), n))
            .unwrap_or(0);
        Renderer::new(opts).render(&data.as_bytes()[start..], &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_cri_lines() {
        let e = parse_line(b"2016-10-06T00:17:09.669794202Z stdout F log content\n").unwrap();
        assert_eq!(e.timestamp, "2016-10-06T00:17:09.669794202Z");
        assert_eq!((e.stream, e.partial), ("stdout", false));
        assert_eq!(e.content, b"log content\n");
        let e = parse_line(b"2016-10-06T00:17:09.669794202+02:00 stderr P:x part\n").unwrap();
        assert_eq!(
            (e.stream, e.partial, e.content),
            ("stderr", true, &b"part"[..])
        );
        assert!(parse_line(b"nonsense").is_err());
        assert!(parse_line(b"2016-10-06T00:17:09Z stdin F x").is_err());
    }

    #[test]
    fn renders_like_upstream() {
        let all = LogOptions::default();
        assert_eq!(render(&all, LOG), "first\nsecond\npartial\n\nlast\n");
        let ts = LogOptions {
            timestamps: true,
            ..LogOptions::default()
        };
        // A partial line gets one prefix; the timestamp is printed as written.
        assert_eq!(
            render(&ts, LOG),
            "2024-05-01T10:00:00.1Z first\n2024-05-01T10:00:01.2Z second\n2024-05-01T10:00:02.3Z partial\n2024-05-01T10:00:03.5Z \n2024-05-01T10:00:04.123456789Z last\n"
        );
    }

    #[test]
    fn tail_since_and_limit() {
        let tail = |n| LogOptions {
            tail_lines: Some(n),
            ..LogOptions::default()
        };
        assert_eq!(render(&tail(1), LOG), "last\n");
        assert_eq!(render(&tail(2), LOG), "\nlast\n");
        assert_eq!(render(&tail(0), LOG), "");
        assert_eq!(render(&tail(100), LOG), render(&LogOptions::default(), LOG));
        // Without a final newline the last line still counts.
        assert_eq!(tail_start(b"a\nb", 1), 2);

        let since =
            LogOptions::from_query("sinceTime=2024-05-01T10%3A00%3A02Z", Utc::now()).unwrap();
        assert_eq!(render(&since, LOG), "partial\n\nlast\n");
        let now: DateTime<Utc> = "2024-05-01T10:00:05Z".parse().unwrap();
        let recent = LogOptions::from_query("sinceSeconds=2", now).unwrap();
        assert_eq!(render(&recent, LOG), "\nlast\n");

        let limit = LogOptions::from_query("limitBytes=8", Utc::now()).unwrap();
        assert_eq!(render(&limit, LOG), "first\nse");
    }

    #[test]
    fn query_errors() {
        assert!(LogOptions::from_query("tailLines=-1", Utc::now()).is_err());
        assert!(LogOptions::from_query("limitBytes=x", Utc::now()).is_err());
        let o = LogOptions::from_query(
            "follow=true&previous=true&timestamps=true&tailLines=5",
            Utc::now(),
        )
        .unwrap();
        assert!(o.follow && o.previous && o.timestamps);
        assert_eq!(o.tail_lines, Some(5));
    }

    #[test]
    fn container_states_pick_the_instance_or_explain() {
        let pod = |statuses: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": "default"},
                "status": {"containerStatuses": statuses},
            }))
            .unwrap()
        };
        let cs = |state: serde_json::Value, last: serde_json::Value| {
            serde_json::json!([{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
                "containerID": "containerd://cur", "state": state, "lastState": last}])
        };
        let running = pod(cs(
            serde_json::json!({"running": {}}),
            serde_json::json!({"terminated": {"exitCode": 1, "containerID": "containerd://old"}}),
        ));
        assert_eq!(pick_container(&running, "c", false), Ok("cur".into()));
        assert_eq!(pick_container(&running, "c", true), Ok("old".into()));
        assert_eq!(
            pick_container(&running, "x", false),
            Err("container \"x\" in pod \"p\" is not available".into())
        );
        let waiting = pod(cs(
            serde_json::json!({"waiting": {"reason": "ContainerCreating"}}),
            serde_json::json!({}),
        ));
        assert_eq!(
            pick_container(&waiting, "c", false),
            Err("container \"c\" in pod \"p\" is waiting to start: ContainerCreating".into())
        );
        assert_eq!(
            pick_container(&waiting, "c", true),
            Err("previous terminated container \"c\" in pod \"p\" not found".into())
        );
        let pulling = pod(cs(
            serde_json::json!({"waiting": {"reason": "ImagePullBackOff"}}),
            serde_json::json!({}),
        ));
        assert_eq!(
            pick_container(&pulling, "c", false),
            Err("container \"c\" in pod \"p\" is waiting to start: trying and failing to pull image".into())
        );
    }
}
