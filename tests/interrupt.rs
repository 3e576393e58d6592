//! Ctrl-C, SIGTERM and a SIGKILLed parent leave nothing behind: no runner, no side, no
//! half-written output. Linux only: processes are found in /proc, and runners die with their
//! parent by PR_SET_PDEATHSIG.
//!
//! Each test starts its `sockconf` (or a test process that starts one) in a session of its own.
//! Runners and sides never leave that session (a side only changes its process group), so the
//! session id finds every process the run started, dead or alive. This test process is a child
//! subreaper: what the run orphans comes to it, never to init, and it reaps it.
#![cfg(target_os = "linux")]

mod common;

use common::sockconf;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use rstest::rstest;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after the signal every process of the run must be gone.
const ALL_GONE: Duration = Duration::from_secs(1);
/// How long a run may take to get going (runners with sides running) on a loaded machine.
const MID_SUITE: Duration = Duration::from_secs(30);

/// Cases that take seconds (timers), in flight when the signal comes; `timewait.tw_reuse` runs
/// its variants in sub-runners. With the quick `close` family they make the "suite".
const SLOW: &[&str] = &[
    "finwait2.held_socket_stays",
    "keepalive.unanswered_probes_time_out",
    "timewait.tw_reuse",
];

/// `sockconf run` with the quick `close` family and the [`SLOW`] cases, all at once.
fn suite() -> Command {
    let mut sockconf = Command::new(env!("CARGO_BIN_EXE_sockconf"));
    sockconf
        .args(["run", "close"])
        .args(SLOW)
        .args(["--jobs", "16", "--format", "json"]);
    sockconf
}

/// One run at a time: each is the whole suite, and they share this process's orphans.
static ONE_RUN: Mutex<()> = Mutex::new(());

/// A process in /proc: its pid, state letter, parent and command line.
#[derive(Debug)]
struct Proc {
    pid: i32,
    state: char,
    ppid: i32,
    cmdline: String,
}

/// Every process whose session is `sid`.
fn session(sid: i32) -> Vec<Proc> {
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: the fields follow the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // state ppid pgrp session ...
        if fields.get(3).and_then(|s| s.parse().ok()) != Some(sid) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        found.push(Proc {
            pid,
            state: fields[0].chars().next().unwrap_or('?'),
            ppid: fields[1].parse().unwrap_or(0),
            cmdline,
        });
    }
    found
}

/// Start `command` as the leader of a new session, its id the child's pid.
fn start_in_own_session(mut command: Command) -> Child {
    // SAFETY: setsid is async-signal-safe; the child has just been forked and is about to exec.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
        });
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start")
}

/// Become the reaper of whatever the runs orphan.
fn be_subreaper() {
    // SAFETY: prctl with integer arguments.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
}

/// Wait until the run in session `sid` is mid-suite: the runner of a [`SLOW`] case has forked
/// its sides (or sub-runner).
fn wait_mid_suite(sid: i32) {
    let deadline = Instant::now() + MID_SUITE;
    loop {
        let procs = session(sid);
        let runners: Vec<i32> = procs
            .iter()
            .filter(|p| {
                p.state != 'Z'
                    && SLOW
                        .iter()
                        .any(|id| p.cmdline.contains(&format!(" run-case {id}")))
            })
            .map(|p| p.pid)
            .collect();
        if procs.iter().any(|p| runners.contains(&p.ppid)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no runner with sides within {MID_SUITE:?}: {procs:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reap `child` (ours) by `deadline`; its exit status.
fn reap_by(child: &mut Child, deadline: Instant) -> std::process::ExitStatus {
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "{} did not exit", child.id());
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Wait until no process of session `sid` is left, reaping those that are our zombies (orphans
/// adopted by this subreaper), by `deadline`. What is left then, if anything.
fn gone_by(sid: i32, deadline: Instant) -> Result<Duration, Vec<Proc>> {
    let me = std::process::id() as i32;
    let start = Instant::now();
    loop {
        let mut left = session(sid);
        for p in left.iter().filter(|p| p.state == 'Z' && p.ppid == me) {
            let _ = waitpid(Pid::from_raw(p.pid), None);
        }
        left.retain(|p| !(p.state == 'Z' && p.ppid == me));
        if left.is_empty() {
            return Ok(start.elapsed());
        }
        if Instant::now() > deadline {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A directory of its own under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sockconf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// No file in `dir` is half-written: none is `.partial`, and every pcap reads to its end.
fn no_partial_outputs(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        let name = path.display().to_string();
        assert!(!name.ends_with(".partial"), "left behind: {name}");
        if name.ends_with(".pcap") {
            let file = std::fs::File::open(&path).expect("open pcap");
            let mut reader = pcap_file::pcap::PcapReader::new(file).expect("a pcap header");
            while let Some(packet) = reader.next_packet() {
                packet.unwrap_or_else(|e| panic!("{name} is truncated: {e}"));
            }
        }
    }
}

#[rstest]
#[case::sigint(Signal::SIGINT, 130)]
#[case::sigterm(Signal::SIGTERM, 143)]
fn a_signal_mid_suite_ends_every_process_and_leaves_no_partial_output(
    #[case] signal: Signal,
    #[case] code: i32,
) {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    be_subreaper();
    let dir = temp_dir(signal.as_str());
    let junit = dir.join("junit.xml");
    let html = dir.join("report.html");
    let mut sockconf = suite();
    sockconf
        .arg("--junit")
        .arg(&junit)
        .arg("--html")
        .arg(&html)
        .arg("--pcap")
        .arg(dir.join("pcap"));
    let mut run = start_in_own_session(sockconf);
    let sid = run.id() as i32;
    // Mid-suite: a case has finished (its pcap is in place), and a runner has its sides.
    let deadline = Instant::now() + MID_SUITE;
    while !std::fs::read_dir(dir.join("pcap"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "pcap"))
    {
        assert!(
            Instant::now() < deadline,
            "no case finished (wrote its pcap) in {MID_SUITE:?}: like the case tests, these need \
             cases to run in a network namespace of their own, with a capture"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_mid_suite(sid);

    kill(Pid::from_raw(sid), signal).expect("signal sockconf");
    let signalled = Instant::now();
    let status = reap_by(&mut run, signalled + ALL_GONE);
    let left = gone_by(sid, signalled + ALL_GONE);
    let took = signalled.elapsed();
    let out = run.wait_with_output().expect("its output");
    let stderr = String::from_utf8_lossy(&out.stderr);

    match left {
        Ok(_) => eprintln!("all gone {took:?} after {}", signal.as_str()),
        Err(left) => panic!("left {took:?} after {}: {left:?}", signal.as_str()),
    }
    assert_eq!(status.code(), Some(code), "{status:?}; stderr: {stderr}");
    assert!(out.stdout.is_empty(), "no report (not a truncated one)");
    // A runner renames its pcap into place before it hands its report over, so the signal may
    // land between the two: then sockconf has seen no instance finish, and says so (`0
    // finished`) rather than listing any. Where it counts some, it names them.
    let finished: usize = stderr
        .split(&format!("interrupted by {} after ", signal.as_str()))
        .nth(1)
        .and_then(|rest| rest.split(": ").nth(1))
        .and_then(|counts| counts.split(" finished").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("how many finished: {stderr}"));
    assert!(
        (finished == 0 || stderr.contains("sockconf: finished: "))
            && stderr.contains("sockconf: interrupted: "),
        "what finished and what did not: {stderr}"
    );
    assert!(!junit.exists(), "no JUnit file from an interrupted run");
    assert!(!html.exists(), "no HTML report from an interrupted run");
    no_partial_outputs(&dir);
    no_partial_outputs(&dir.join("pcap"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn runners_die_with_a_sigkilled_parent() {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    be_subreaper();
    let mut run = start_in_own_session(suite());
    let sid = run.id() as i32;
    wait_mid_suite(sid);

    run.kill().expect("SIGKILL sockconf");
    let killed = Instant::now();
    let status = reap_by(&mut run, killed + ALL_GONE);
    assert_eq!(status.code(), None, "killed: {status:?}");
    // Its runners, then their sides, come to this subreaper as they die of PR_SET_PDEATHSIG.
    match gone_by(sid, killed + ALL_GONE) {
        Ok(_) => eprintln!("all gone {:?} after the SIGKILL", killed.elapsed()),
        Err(left) => panic!("left {ALL_GONE:?} after the parent's SIGKILL: {left:?}"),
    }
}

/// Started by the test below as a process of its own: a test that runs the whole suite through
/// the tests' `sockconf` fixture, as every case test does, and is killed before it ends.
#[rstest]
#[ignore = "a helper: started and killed by a_killed_test_process_takes_its_sockconf_along"]
fn helper_runs_the_suite(mut sockconf: Command) {
    let suite = suite();
    let _ = sockconf.args(suite.get_args()).output();
}

#[rstest]
#[case::sigterm_to_the_test(Signal::SIGTERM, false)]
#[case::ctrl_c_to_the_group(Signal::SIGINT, true)]
fn a_killed_test_process_takes_its_sockconf_along(
    #[case] signal: Signal,
    #[case] to_the_group: bool,
) {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    be_subreaper();
    let mut test = Command::new(std::env::current_exe().expect("own path"));
    test.args([
        "--ignored",
        "--exact",
        "helper_runs_the_suite",
        "--nocapture",
    ]);
    let mut helper = start_in_own_session(test);
    let sid = helper.id() as i32;
    wait_mid_suite(sid);

    // Ctrl-C goes to the terminal's foreground process group: the test process, its sockconf
    // and the runners (the sides have groups of their own).
    let target = if to_the_group { -sid } else { sid };
    kill(Pid::from_raw(target), signal).expect("signal the test process");
    let signalled = Instant::now();
    let status = reap_by(&mut helper, signalled + ALL_GONE);
    assert_eq!(status.signal(), Some(signal as i32), "{status:?}");
    match gone_by(sid, signalled + ALL_GONE) {
        Ok(_) => eprintln!(
            "all gone {:?} after {} to the test process",
            signalled.elapsed(),
            signal.as_str()
        ),
        Err(left) => panic!(
            "left {:?} after {} to the test process: {left:?}",
            signalled.elapsed(),
            signal.as_str()
        ),
    }
}

/// How a run that has an AF_UNIX directory under $TMPDIR is cut short.
#[derive(Clone, Copy, Debug)]
enum CutShort {
    /// Ctrl-C to `sockconf run`: its interrupt path removes the directory.
    CtrlC,
    /// SIGKILL to the runner: `sockconf run` removes it when the runner dies without a report.
    RunnerKilled,
    /// SIGKILL to `sockconf run` (its runner dies with it): the next `sockconf run` removes it.
    OwnerKilled,
}

/// The AF_UNIX directory a runner made under `tmp` (the fallback without a mount namespace,
/// forced here with SOCKCONF_ISOLATION=host), with the runner's pid from its name
/// (`sockconf-unix.<owner>.<runner>.XXXXXX`).
fn af_unix_dirs(tmp: &Path) -> Vec<(PathBuf, i32)> {
    std::fs::read_dir(tmp)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let runner = name.strip_prefix("sockconf-unix.")?.split('.').nth(1)?;
            Some((e.path(), runner.parse().ok()?))
        })
        .collect()
}

/// `sockconf run ID` with its AF_UNIX directories under `tmp`, not in a mount namespace.
fn af_unix_run(tmp: &Path, id: &str) -> Command {
    let mut sockconf = Command::new(env!("CARGO_BIN_EXE_sockconf"));
    sockconf
        .args(["run", id, "--format", "json"])
        .env("TMPDIR", tmp)
        .env("SOCKCONF_ISOLATION", "host");
    sockconf
}

/// An AF_UNIX instance's socket file and directory are removed however its run is cut short.
/// The runner is frozen (SIGSTOP) once its directory exists, so that it cannot remove it itself:
/// whoever removes it then is the path under test.
#[rstest]
#[case::ctrl_c(CutShort::CtrlC)]
#[case::runner_killed(CutShort::RunnerKilled)]
#[case::owner_killed(CutShort::OwnerKilled)]
fn an_af_unix_directory_is_removed_however_the_run_is_cut_short(#[case] how: CutShort) {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    be_subreaper();
    let tmp = temp_dir(&format!("unix-{how:?}"));
    // Its client watches for 200 ms that nothing arrives: the directory lives that long.
    let mut run = start_in_own_session(af_unix_run(&tmp, "unix.fork_close_one_holder"));
    let sid = run.id() as i32;
    let deadline = Instant::now() + MID_SUITE;
    // Frozen once the server has bound its socket file (the sides run on while the runner is
    // frozen, up to their next barrier, which it never relays).
    let (dir, runner) = loop {
        if let Some(found) = af_unix_dirs(&tmp)
            .into_iter()
            .find(|(dir, _)| dir.join("socket").exists())
        {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no AF_UNIX socket file in {MID_SUITE:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    kill(Pid::from_raw(runner), Signal::SIGSTOP).expect("freeze the runner");
    assert!(
        dir.join("socket").exists(),
        "the runner removed {} before it froze",
        dir.display()
    );

    let cut = Instant::now();
    match how {
        CutShort::CtrlC => kill(Pid::from_raw(sid), Signal::SIGINT).expect("SIGINT"),
        CutShort::RunnerKilled => kill(Pid::from_raw(runner), Signal::SIGKILL).expect("SIGKILL"),
        CutShort::OwnerKilled => run.kill().expect("SIGKILL sockconf"),
    }
    let status = reap_by(&mut run, cut + ALL_GONE);
    let mut stderr = String::new();
    if let Some(mut err) = run.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    if let Err(left) = gone_by(sid, cut + ALL_GONE) {
        panic!("{how:?}: left {left:?}");
    }
    match how {
        CutShort::CtrlC => assert_eq!(status.code(), Some(130), "{stderr}"),
        CutShort::RunnerKilled => assert_eq!(status.code(), Some(1), "{stderr}"),
        CutShort::OwnerKilled => {
            assert_eq!(status.code(), None);
            assert!(dir.exists(), "nobody was left to remove it");
            // The next run removes what a dead owner's dead runner left behind.
            let next = af_unix_run(&tmp, "unix.shut_wr_then_eof@unix_stream")
                .output()
                .expect("the next run");
            let next_err = String::from_utf8_lossy(&next.stderr);
            assert!(next.status.success(), "{next_err}");
            assert!(
                next_err.contains(&format!("removed {}", dir.display())),
                "{next_err}"
            );
        }
    }
    if !matches!(how, CutShort::OwnerKilled) {
        assert!(
            stderr.contains(&format!("removed {}", dir.display())),
            "{how:?}: says what it removed: {stderr}"
        );
    }
    assert!(!dir.exists(), "{how:?}: {} is left", dir.display());
    assert_eq!(af_unix_dirs(&tmp), vec![], "{how:?}: nothing else is left");
    let _ = std::fs::remove_dir_all(&tmp);
}
