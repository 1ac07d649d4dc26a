//! A real `docker-registry` (Debian package, distribution 2.8) on loopback with
//! its own storage, optionally behind token auth served by this test process,
//! and a TCP proxy that can throttle, cut or corrupt a transfer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const TOKEN_USER: &str = "stack";
pub const TOKEN_PASSWORD: &str = "s3cret";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The running registry; killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub token: Option<TokenServer>,
}

impl Registry {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A registry that only accepts bearer tokens from a token endpoint this
    /// process serves, which grants them for `stack:s3cret` only.
    pub fn start_with_token_auth() -> Self {
        Self::start_with(true)
    }

    fn start_with(token_auth: bool) -> Self {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} missing: apt-get install docker-registry"
        );
        let dir = tempfile::Builder::new()
            .prefix("stack-registry-")
            .tempdir()
            .unwrap();
        let token = token_auth.then(|| TokenServer::start(dir.path()));
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: stack-test\n",
            dir.path().join("data").display()
        );
        if let Some(t) = &token {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: stack-test\n    issuer: stack-test-issuer\n    rootcertbundle: {}\n",
                t.port,
                t.cert.display()
            ));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, config).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let reg = Self {
            child,
            port,
            dir,
            token,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        reg
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes an OCI layout with skopeo (Debian package `skopeo`).
    pub fn push(&self, layout: &Path, name: &str, all: bool) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--dest-tls-verify=false"]);
        if all {
            cmd.arg("--all");
        }
        if self.token.is_some() {
            cmd.arg(format!("--dest-creds={TOKEN_USER}:{TOKEN_PASSWORD}"));
        }
        let out = cmd
            .arg(format!("oci:{}", layout.display()))
            .arg(format!("docker://{}/{name}", self.host()))
            .output()
            .expect("skopeo missing: apt-get install skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token endpoint: checks basic credentials, signs RS256 JWTs carrying the
/// certificate in `x5c`, which the registry trusts through `rootcertbundle`.
pub struct TokenServer {
    pub port: u16,
    pub cert: PathBuf,
    pub issued: Arc<AtomicUsize>,
    pub refused: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    fn start(dir: &Path) -> Self {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let st = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=stack-test-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .expect("openssl missing: apt-get install openssl");
        assert!(st.success());
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let issued = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (i2, r2, s2) = (issued.clone(), refused.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        handle_token(s, &key, &x5c, &i2, &r2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            cert,
            issued,
            refused,
            stop,
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn handle_token(
    mut s: TcpStream,
    key: &Path,
    x5c: &str,
    issued: &AtomicUsize,
    refused: &AtomicUsize,
) {
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let target = line.split(' ').nth(1).unwrap_or("").to_owned();
    let mut authorized = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
            && let Some(b) = v.trim().strip_prefix("Basic ")
        {
            let want = base64::engine::general_purpose::STANDARD
                .encode(format!("{TOKEN_USER}:{TOKEN_PASSWORD}"));
            authorized = b == want;
        }
    }
    if !authorized {
        refused.fetch_add(1, Ordering::Relaxed);
        let _ = s.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut access = Vec::new();
    for pair in query.split('&') {
        if let Some(scope) = pair.strip_prefix("scope=") {
            let scope = scope
                .replace("%3A", ":")
                .replace("%2C", ",")
                .replace("%2F", "/");
            let parts: Vec<&str> = scope.split(':').collect();
            if parts.len() == 3 {
                access.push(serde_json::json!({"type": parts[0], "name": parts[1], "actions": parts[2].split(',').collect::<Vec<_>>()}));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": "stack-test-issuer", "sub": TOKEN_USER, "aud": "stack-test",
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", issued.load(Ordering::Relaxed)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let sig = child.wait_with_output().unwrap().stdout;
    let token = format!("{signing_input}.{}", b64(&sig));
    issued.fetch_add(1, Ordering::Relaxed);
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// What the proxy does to registry-to-client bytes.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    None,
    /// Drops every connection once this many bytes went to clients in total.
    CutAfter(u64),
    /// Flips one byte of every response bigger than this offset.
    CorruptAt(u64),
}

/// A loopback TCP proxy in front of the registry, throttled to `bytes_per_sec`.
pub struct Proxy {
    pub port: u16,
    pub fault: Arc<std::sync::Mutex<Fault>>,
    pub sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16, bytes_per_sec: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let fault = Arc::new(std::sync::Mutex::new(Fault::None));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f2, sent2, stop2) = (fault.clone(), sent.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(c2, s2, None));
                let ctx = (f2.clone(), sent2.clone(), bytes_per_sec);
                std::thread::spawn(move || pipe(server, client, Some(ctx)));
            }
        });
        Self {
            port,
            fault,
            sent,
            stop,
        }
    }

    pub fn set(&self, f: Fault) {
        *self.fault.lock().unwrap() = f;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

type Downstream = (Arc<std::sync::Mutex<Fault>>, Arc<AtomicU64>, u64);

fn pipe(mut from: TcpStream, mut to: TcpStream, down: Option<Downstream>) {
    let mut buf = [0u8; 16 * 1024];
    let mut conn_bytes = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((fault, sent, rate)) = &down {
            let f = *fault.lock().unwrap();
            match f {
                Fault::CutAfter(limit) if sent.load(Ordering::Relaxed) + n as u64 > limit => break,
                Fault::CorruptAt(at) if conn_bytes <= at && at < conn_bytes + n as u64 => {
                    buf[(at - conn_bytes) as usize] ^= 0xff;
                }
                _ => {}
            }
            conn_bytes += n as u64;
            sent.fetch_add(n as u64, Ordering::Relaxed);
            std::thread::sleep(Duration::from_micros(n as u64 * 1_000_000 / rate));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
