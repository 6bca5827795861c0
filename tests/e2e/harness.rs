//! Plumbing for the end-to-end tests: scaffold and build a generated service in the shared
//! target dir, run it, talk HTTP to it, and stand up its peers (a killable TCP forwarder in
//! front of a store, the OTLP receiver, the PyJWT minter).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One cargo target dir for every generated-service build, so they share compiled
/// dependencies across tests and runs.
pub fn e2e_target() -> PathBuf {
    std::env::var_os("CARGO_PLATFORM_E2E_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target").join("e2e"))
}

/// The variables every generated-service build in the shared target dir runs with: the dir
/// itself, no incremental caches and no debug info. Both caches are written per build of every
/// test's own crate and are never reused (each test scaffolds anew), and together they took the
/// shared dir past the disk CI had (tens of GB, "No space left on device"); without them the
/// suite's builds and links are also faster. Tests that run the tool, which runs cargo itself
/// (`upgrade --verify`, `fleet upgrade --verify`), pass the same variables to it.
pub fn e2e_cargo_env() -> [(&'static str, std::ffi::OsString); 3] {
    [
        ("CARGO_TARGET_DIR", e2e_target().into_os_string()),
        ("CARGO_INCREMENTAL", "0".into()),
        ("CARGO_PROFILE_DEV_DEBUG", "0".into()),
    ]
}

/// 64 random bits as hex (std's per-instance random hasher keys; no rand crate needed).
pub fn random_hex64() -> String {
    let mut h = RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(now.as_nanos());
    format!("{:016x}", h.finish())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

pub fn wait_until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// `cargo` in `dir` with `target` as its target dir (the shared one, [`e2e_target`]) and extra
/// variables; nothing inherited from the cargo running the tests says which package it is.
pub fn cargo_in(dir: &Path, target: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .envs(e2e_cargo_env())
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTFLAGS")
        .envs(env.iter().copied())
        .output()
        .expect("run cargo")
}

/// The `warning…` lines cargo and rustc printed on stderr.
pub fn warnings(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.trim_start().starts_with("warning"))
        .map(str::to_owned)
        .collect()
}

fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

pub fn script(name: &str) -> PathBuf {
    repo_root().join("tests").join("e2e").join(name)
}

/// A generated service on disk. Its directory is removed on success and kept (path printed)
/// when the test fails, for a post-mortem.
pub struct Service {
    pub name: String,
    pub dir: PathBuf,
    pub target: PathBuf,
    work: Option<tempfile::TempDir>,
}

impl Drop for Service {
    fn drop(&mut self) {
        if thread::panicking()
            && let Some(work) = self.work.take()
        {
            eprintln!(
                "kept the generated service for a post-mortem: {}",
                work.keep().display()
            );
        }
    }
}

impl Service {
    /// `cargo platform new <name> --yes --no-git --path <tmp>/<name> --set owner=e2e --set …`
    /// (`--template-version $CARGO_PLATFORM_E2E_TEMPLATE_VERSION` when that is set).
    pub fn scaffold(name: &str, answers: &[(&str, &str)]) -> Service {
        Self::scaffold_at(
            name,
            std::env::var("CARGO_PLATFORM_E2E_TEMPLATE_VERSION")
                .ok()
                .as_deref(),
            false,
            answers,
        )
    }

    /// As [`Service::scaffold`], at release `version` of the template (`--allow-draft` when
    /// `allow_draft`, to test a release under construction).
    pub fn scaffold_at(
        name: &str,
        version: Option<&str>,
        allow_draft: bool,
        answers: &[(&str, &str)],
    ) -> Service {
        let work = tempfile::Builder::new()
            .prefix("cargo-platform-e2e-")
            .tempdir()
            .expect("create a temp dir");
        let dir = work.path().join(name);
        Self::render(name, &dir, version, allow_draft, answers);
        Service {
            name: name.to_owned(),
            dir,
            target: e2e_target(),
            work: Some(work),
        }
    }

    /// As [`Service::scaffold_at`], into `dir` (removed first when it exists), which is kept
    /// afterwards: for a service several tests share, and to look at after a run.
    pub fn scaffold_into(
        dir: &Path,
        version: Option<&str>,
        allow_draft: bool,
        answers: &[(&str, &str)],
    ) -> Service {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("the service directory's name is the service's name")
            .to_owned();
        if dir.exists() {
            fs::remove_dir_all(dir)
                .unwrap_or_else(|e| panic!("remove the old {}: {e}", dir.display()));
        }
        fs::create_dir_all(dir.parent().expect("a parent directory"))
            .expect("create the parent directory");
        Self::render(&name, dir, version, allow_draft, answers);
        Service {
            name,
            dir: dir.to_owned(),
            target: e2e_target(),
            work: None,
        }
    }

    /// A service already on disk in `dir` (rendered by an earlier run), as it is.
    pub fn existing(dir: &Path) -> Service {
        assert!(
            dir.join("Cargo.toml").is_file(),
            "no service in {}",
            dir.display()
        );
        Service {
            name: dir
                .file_name()
                .and_then(|n| n.to_str())
                .expect("the service directory's name is the service's name")
                .to_owned(),
            dir: dir.to_owned(),
            target: e2e_target(),
            work: None,
        }
    }

    fn render(
        name: &str,
        dir: &Path,
        version: Option<&str>,
        allow_draft: bool,
        answers: &[(&str, &str)],
    ) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-platform"));
        cmd.args(["platform", "new", name, "--yes", "--no-git", "--path"])
            .arg(dir)
            .args(["--set", "owner=e2e"]);
        // The newest release by default (what `new` gives a team); pin one to test an older one.
        if let Some(version) = version {
            cmd.args(["--template-version", version]);
        }
        if allow_draft {
            cmd.arg("--allow-draft");
        }
        for (k, v) in answers {
            cmd.args(["--set", &format!("{k}={v}")]);
        }
        let out = cmd.output().expect("run cargo-platform");
        assert!(
            out.status.success(),
            "cargo platform new failed\n{}",
            describe(&out)
        );
        assert!(
            dir.join("Cargo.toml").is_file(),
            "no Cargo.toml in {}",
            dir.display()
        );
    }

    pub fn cargo(&self, args: &[&str]) -> Output {
        self.cargo_with_env(args, &[])
    }

    /// `cargo` in the service's directory and the shared target dir, with extra variables.
    pub fn cargo_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        cargo_in(&self.dir, &self.target, args, env)
    }

    /// `cargo build`; returns the warnings it printed (replayed from cache on a fresh build).
    pub fn build(&self) -> Vec<String> {
        let out = self.cargo(&["build", "--color", "never"]);
        assert!(
            out.status.success(),
            "cargo build of {} failed\n{}",
            self.name,
            describe(&out)
        );
        warnings(&out)
    }

    /// `cargo clippy --all-targets` with warnings denied, as a team's own CI commonly runs it:
    /// `Err` with clippy's report when the generated code (tests included) does not pass.
    pub fn clippy(&self) -> Result<(), String> {
        let out = self.cargo(&[
            "clippy",
            "--all-targets",
            "--color",
            "never",
            "--",
            "-D",
            "warnings",
        ]);
        if out.status.success() {
            Ok(())
        } else {
            Err(describe(&out))
        }
    }

    /// `cargo doc --no-deps` with rustdoc warnings denied: the service's own documentation
    /// builds without broken or private links. Returns rustdoc's report when it does not.
    pub fn doc(&self) -> Result<(), String> {
        let out = self.cargo_with_env(
            &["doc", "--no-deps", "--color", "never"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        );
        if out.status.success() {
            Ok(())
        } else {
            Err(describe(&out))
        }
    }

    /// Crate versions in the service's dependency tree (this host's platform) that only the
    /// service itself depends on while the rest of the tree uses another version of the same
    /// crate: a second copy the template could avoid by picking the version the tree already has.
    /// Returns one line per such version, naming the other versions and who uses them.
    pub fn avoidable_duplicates(&self) -> Vec<String> {
        let host = Command::new("rustc")
            .args(["-vV"])
            .output()
            .ok()
            .and_then(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            })
            .expect("rustc -vV names the host");
        let out = self.cargo(&[
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &host,
        ]);
        assert!(
            out.status.success(),
            "cargo metadata failed\n{}",
            describe(&out)
        );
        let metadata: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
        // Package id -> (name, version).
        let packages: BTreeMap<&str, (&str, &str)> = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| {
                let field = |key: &str| p[key].as_str().expect("package id, name and version");
                (field("id"), (field("name"), field("version")))
            })
            .collect();
        let resolve = &metadata["resolve"];
        let root = resolve["root"].as_str().expect("a root package");
        let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut dependents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for node in resolve["nodes"].as_array().expect("resolve nodes") {
            let id = node["id"].as_str().expect("node id");
            versions.entry(packages[id].0).or_default().push(id);
            for dep in node["deps"].as_array().expect("node deps") {
                let dep = dep["pkg"].as_str().expect("dep pkg");
                dependents.entry(dep).or_default().insert(id);
            }
        }
        let mut found = Vec::new();
        for (name, ids) in versions.iter().filter(|(_, ids)| ids.len() > 1) {
            for &id in ids {
                if dependents
                    .get(id)
                    .is_some_and(|users| users.len() == 1 && users.contains(root))
                {
                    let others: Vec<String> = ids
                        .iter()
                        .filter(|&&other| other != id)
                        .map(|&other| {
                            let users: Vec<&str> = dependents
                                .get(other)
                                .into_iter()
                                .flatten()
                                .map(|&user| packages[user].0)
                                .collect();
                            format!("{} (used by {})", packages[other].1, users.join(", "))
                        })
                        .collect();
                    found.push(format!(
                        "{name} {} is used only by {} while the tree also has {}",
                        packages[id].1,
                        self.name,
                        others.join("; ")
                    ));
                }
            }
        }
        found
    }

    /// `cargo test` of the generated service's own tests.
    pub fn run_own_tests(&self) -> String {
        let out = self.cargo(&["test", "--color", "never"]);
        assert!(
            out.status.success(),
            "the generated service's own tests failed\n{}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn binary(&self) -> PathBuf {
        self.target.join("debug").join(&self.name)
    }

    pub fn scratch(&self, file: &str) -> PathBuf {
        self.dir
            .parent()
            .expect("service dir has a parent")
            .join(file)
    }

    /// Runs `<bin> <args>` with `env`, expecting success; returns stdout.
    pub fn run_cli(&self, args: &[&str], env: &[(String, String)]) -> String {
        let out = Command::new(self.binary())
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .output()
            .expect("run the service binary");
        assert!(
            out.status.success(),
            "{} {args:?} failed\n{}",
            self.name,
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts the server (no args = serve) and waits for `/readyz` to answer 200.
    pub fn start(&self, port: u16, env: &[(String, String)]) -> Running {
        let stdout_path = self.scratch("service.stdout");
        let stderr_path = self.scratch("service.stderr");
        let child = Command::new(self.binary())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).expect("create stdout file"))
            .stderr(fs::File::create(&stderr_path).expect("create stderr file"))
            .spawn()
            .expect("start the service");
        let mut running = Running {
            child: Some(child),
            stdout_path,
            stderr_path,
        };
        let http = Http::new(port);
        let ready = wait_until(Duration::from_secs(60), || {
            if let Some(status) = running.try_wait() {
                panic!(
                    "the service exited during startup ({status})\n{}",
                    running.output()
                );
            }
            http.try_get("/readyz").filter(|r| r.status == 200)
        });
        assert!(
            ready.is_some(),
            "the service was not ready within 60 s\n{}",
            running.output()
        );
        running
    }
}

/// The service process. Killed on drop if still running.
pub struct Running {
    child: Option<Child>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("process").id()
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("poll the service process"))
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn output(&self) -> String {
        let err = fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let tail = |s: &str| {
            s.lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "--- service stdout (tail)\n{}\n--- service stderr (tail)\n{}",
            tail(&self.stdout()),
            tail(&err)
        )
    }

    /// SIGKILL (no chance to finish anything) and the exit status.
    pub fn kill(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("process");
        child.kill().expect("SIGKILL the service");
        child.wait().expect("wait for the killed service")
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        wait_until(timeout, || self.try_wait())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && child.try_wait().ok().flatten().is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {self:?}"))
    }

    /// Asserts an RFC 9457 problem: status, content type and members.
    pub fn assert_problem(&self, status: u16, context: &str) -> Value {
        assert_eq!(self.status, status, "{context}: {self:?}");
        let ctype = self.header("content-type").unwrap_or_default();
        assert!(
            ctype.starts_with("application/problem+json"),
            "{context}: content-type {ctype:?}: {self:?}"
        );
        let body = self.json();
        assert_eq!(
            body["status"], status,
            "{context}: problem status member: {body}"
        );
        for member in ["type", "title", "trace_id"] {
            assert!(
                body[member].is_string(),
                "{context}: problem without a `{member}` string: {body}"
            );
        }
        body
    }
}

/// A small blocking HTTP client for 127.0.0.1:<port>.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    pub fn new(port: u16) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Http {
            agent,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn finish(
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, ureq::Error> {
        let mut res = res?;
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = res.body_mut().read_to_string()?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn try_get(&self, path: &str) -> Option<Reply> {
        Self::finish(self.agent.get(format!("{}{path}", self.base)).call()).ok()
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::finish(req.call()).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::finish(req.send(body)).unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub fn metrics(&self) -> String {
        let r = self.get("/metrics", &[]);
        assert_eq!(r.status, 200, "GET /metrics: {r:?}");
        r.body
    }
}

/// The sum of every sample of `name` in a Prometheus text exposition (0 when absent).
pub fn sample_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Metric names that have at least one sample in an exposition, plus the family name of each
/// histogram or summary with samples (`x` for `x_bucket`/`x_count`), which a query may name.
pub fn exposed_names(exposition: &str) -> std::collections::BTreeSet<String> {
    let mut names: std::collections::BTreeSet<String> = exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect();
    let families: Vec<String> = names
        .iter()
        .filter_map(|n| {
            n.strip_suffix("_bucket")
                .or_else(|| n.strip_suffix("_count"))
        })
        .map(str::to_owned)
        .collect();
    names.extend(families);
    names
}

/// A TCP forwarder 127.0.0.1:<port> → upstream, killable, to simulate a store outage without
/// touching the machine's shared PostgreSQL or Redis.
pub struct Forwarder {
    pub port: u16,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

impl Forwarder {
    pub fn start(upstream: SocketAddr) -> Forwarder {
        Self::listen(
            TcpListener::bind("127.0.0.1:0").expect("bind the forwarder"),
            upstream,
        )
    }

    /// The end of an outage: after [`Forwarder::kill`], accept and forward again on the same
    /// port (clients that reconnect to it find the upstream again).
    pub fn revive(&mut self, upstream: SocketAddr) {
        self.kill();
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("bind the forwarder again on port {}: {e}", self.port));
        *self = Self::listen(listener, upstream);
    }

    fn listen(listener: TcpListener, upstream: SocketAddr) -> Forwarder {
        let port = listener.local_addr().expect("forwarder address").port();
        listener.set_nonblocking(true).expect("non-blocking accept");
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accept = {
            let (stop, conns) = (stop.clone(), conns.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let Ok(server) = TcpStream::connect(upstream) else {
                                continue;
                            };
                            client
                                .set_nonblocking(false)
                                .expect("blocking client socket");
                            let mut registry = conns.lock().expect("forwarder registry");
                            registry.push(client.try_clone().expect("clone socket"));
                            registry.push(server.try_clone().expect("clone socket"));
                            drop(registry);
                            pipe(
                                client.try_clone().expect("clone socket"),
                                server.try_clone().expect("clone socket"),
                            );
                            pipe(server, client);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(5))
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
                // The listener drops here: new connections are refused from now on.
            })
        };
        Forwarder {
            port,
            stop,
            conns,
            accept: Some(accept),
        }
    }

    /// The outage: refuse new connections and cut every open one.
    pub fn kill(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            accept.join().expect("forwarder accept thread");
        }
        for s in self.conns.lock().expect("forwarder registry").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// tests/e2e/otlp_receiver.py: decodes OTLP/HTTP protobuf spans into JSON lines.
pub struct OtlpReceiver {
    child: Child,
    pub port: u16,
    pub out: PathBuf,
}

impl OtlpReceiver {
    pub fn start(out: &Path) -> OtlpReceiver {
        let mut child = Command::new(python())
            .arg(script("otlp_receiver.py"))
            .arg("--out")
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tests/e2e/otlp_receiver.py (needs python3 and opentelemetry-proto; see .ci/e2e-setup)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("receiver stdout"))
            .read_line(&mut line)
            .expect("read the receiver's port");
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("otlp_receiver.py did not start: {line:?}"));
        OtlpReceiver {
            child,
            port,
            out: out.to_owned(),
        }
    }

    pub fn spans(&self) -> Vec<Value> {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&self.out) {
            f.read_to_string(&mut text).expect("read spans");
        }
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad span line {l:?}: {e}")))
            .collect()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mints a token with tests/e2e/mint_jwt.py (PyJWT).
pub fn mint_jwt(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(script("mint_jwt.py"))
        .args(args)
        .output()
        .expect("run tests/e2e/mint_jwt.py (needs python3 and PyJWT; see .ci/e2e-setup)");
    assert!(
        out.status.success(),
        "mint_jwt.py {args:?} failed\n{}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `promtool check rules <file>`.
pub fn promtool_check_rules(file: &Path) -> Result<String, String> {
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run promtool ({e}); install it with .ci/e2e-setup"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Finds `key` anywhere in a JSON value (log lines may nest fields under `fields`/`span`).
pub fn find_key<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    let mut found = Vec::new();
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == key {
                    found.push(child);
                }
                found.extend(find_key(child, key));
            }
        }
        Value::Array(items) => items.iter().for_each(|i| found.extend(find_key(i, key))),
        _ => {}
    }
    found
}

/// Names a Prometheus rules file defines itself (`record: name`).
pub fn recording_rule_names(rules: &str) -> std::collections::BTreeSet<String> {
    let recorded =
        regex::Regex::new(r"(?m)^\s*-?\s*record:\s*([A-Za-z_:][A-Za-z0-9_:]*)").expect("regex");
    recorded
        .captures_iter(rules)
        .map(|c| c[1].to_owned())
        .collect()
}

/// Metric names a rules file or Grafana dashboard refers to: identifiers directly followed by
/// a selector (`name{` or `name[`), plus any identifier with a metric suffix, less the
/// recording rules in `defined`.
pub fn referenced_metric_names(
    text: &str,
    defined: &std::collections::BTreeSet<String>,
) -> std::collections::BTreeSet<String> {
    let selector = regex::Regex::new(
        r"(?:^|[^A-Za-z0-9_:])([A-Za-z_](?:[A-Za-z0-9_:]*[A-Za-z0-9_])?)\s*[\{\[]",
    )
    .expect("regex");
    let suffixed = regex::Regex::new(
        r"\b([A-Za-z_][A-Za-z0-9_:]*_(?:total|bucket|sum|count|seconds|bytes))\b",
    )
    .expect("regex");
    // PromQL words that can stand before `{`/`[` without being metrics.
    const NOT_METRICS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
    ];
    selector
        .captures_iter(text)
        .chain(suffixed.captures_iter(text))
        .map(|c| c[1].to_owned())
        .filter(|n| !NOT_METRICS.contains(&n.as_str()) && !defined.contains(n))
        .collect()
}
