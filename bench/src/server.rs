//! The servers under test, started as child processes on 127.0.0.1, and what `/proc` says about
//! them.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use eyre::{WrapErr, bail, eyre};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `dchat-node`.
    Dchat,
    /// The Socket.IO reference.
    SocketIo,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Dchat => "dchat",
            Self::SocketIo => "socket.io",
        }
    }
}

/// A running server, stopped when dropped.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `dchat-node` in a fresh data directory: no peer-to-peer network, rate limits lifted.
    pub(crate) fn dchat(bin: &Path) -> eyre::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("node.toml");
        let data = dir.path().join("node");
        std::fs::write(
            &config,
            format!(
                "http = \"127.0.0.1:0\"\ndata_dir = {data:?}\n\n[p2p]\nenabled = false\n\n[rate_limit]\n\
                 ip_per_sec = 1e12\nip_burst = 1e12\naddress_per_sec = 1e12\naddress_burst = 1e12\n",
                data = data.display().to_string()
            ),
        )?;
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(&config).env("RUST_LOG", "warn");
        let (child, url) = spawn(cmd, "listening on ").wrap_err_with(|| format!("starting {}", bin.display()))?;
        Ok(Self { child, url, _dir: Some(dir) })
    }

    /// Starts `dchat-node` with the peer-to-peer network on loopback, dialling `bootstrap`;
    /// returns it with its own peer addresses (multiaddrs ending in `/p2p/<peer id>`).
    pub(crate) fn dchat_peer(bin: &Path, bootstrap: &[String]) -> eyre::Result<(Self, Vec<String>)> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("node.toml");
        let data = dir.path().join("node");
        let peers: Vec<String> = bootstrap.iter().map(|a| format!("{a:?}")).collect();
        std::fs::write(
            &config,
            format!(
                "http = \"127.0.0.1:0\"\ndata_dir = {data:?}\n\n[p2p]\nenabled = true\n\
                 listen = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = [{peers}]\n\n[rate_limit]\n\
                 ip_per_sec = 1e12\nip_burst = 1e12\naddress_per_sec = 1e12\naddress_burst = 1e12\n",
                data = data.display().to_string(),
                peers = peers.join(", "),
            ),
        )?;
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(&config).env("RUST_LOG", "warn");
        let (child, url, lines) =
            spawn_with(cmd, "listening on ", "p2p address ").wrap_err_with(|| format!("starting {}", bin.display()))?;
        let addrs: Vec<String> =
            lines.iter().filter_map(|l| l.split("p2p address ").nth(1)).map(|a| a.trim().to_string()).collect();
        if addrs.is_empty() {
            bail!("the node printed no peer address");
        }
        Ok((Self { child, url, _dir: Some(dir) }, addrs))
    }

    /// Starts the Socket.IO reference in `dir` (`bench/socketio`, installed).
    pub(crate) fn socketio(dir: &Path) -> eyre::Result<Self> {
        if !dir.join("node_modules/socket.io").exists() {
            bail!("{} is not installed: run `npm ci` there (scripts/bench does)", dir.display());
        }
        let mut cmd = Command::new("node");
        cmd.arg("server.js").current_dir(dir);
        let (child, url) = spawn(cmd, "listening on ").wrap_err("starting the Socket.IO server")?;
        Ok(Self { child, url, _dir: None })
    }

    pub(crate) fn start(kind: Kind, dchat_bin: &Path, socketio_dir: &Path) -> eyre::Result<Self> {
        match kind {
            Kind::Dchat => Self::dchat(dchat_bin),
            Kind::SocketIo => Self::socketio(socketio_dir),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the server has used so far.
    pub(crate) fn cpu(&self) -> Duration {
        cpu_time(self.pid()).unwrap_or_default()
    }

    /// Resident memory, bytes.
    pub(crate) fn rss(&self) -> u64 {
        rss_bytes(self.pid()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd` with piped stdin (the Socket.IO server exits when it closes) and stdout, and
/// waits for the line holding `marker` followed by the server's URL.
fn spawn(cmd: Command, marker: &str) -> eyre::Result<(Child, String)> {
    spawn_with(cmd, marker, "").map(|(child, url, _)| (child, url))
}

/// [`spawn`], also collecting the lines holding `more` printed right after the URL (those that
/// arrive before the server is quiet for half a second).
fn spawn_with(mut cmd: Command, marker: &str, more: &str) -> eyre::Result<(Child, String, Vec<String>)> {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| eyre!("no stdout"))?;
    // A thread reads stdout for good, so the server never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.split(marker).nth(1) {
                    break rest.split_whitespace().next().unwrap_or_default().to_string();
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                bail!("the server did not start within 60 s");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.kill();
                bail!("the server exited before saying where it listens");
            }
        }
    };
    let mut extra = Vec::new();
    if !more.is_empty() {
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            if line.contains(more) {
                extra.push(line);
            }
        }
    }
    Ok((child, url, extra))
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// User + system CPU time of a process, from `/proc/<pid>/stat`.
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start with the state (field 3);
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// `VmRSS` of a process, bytes.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
