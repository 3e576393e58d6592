//! The runner's own behaviour under hangs, disagreements, panics and leftovers, exercised on
//! hand-made cases. A custom harness (harness = false) on libtest-mimic: the runner forks, which
//! is only safe from a single-threaded process, and libtest runs tests on a pool of threads.
//! libtest-mimic speaks libtest's command line (`--list --format terse`, `--exact`, filters),
//! so `cargo test` and `cargo nextest run` both drive it; with one test thread it runs every
//! test on the main thread and starts no other, which `main` forces.

use harness::judge::Kernel;
use harness::report::Verdict;
use harness::spawn::run_case;
use harness::{is, Case, Ctx, Expect, Instance, Kind, Os, Provenance, Side};
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_millis(300);

/// A hand-made case's IPv4 instance (leaked: an instance names a `'static` case).
fn case(server: fn(&mut Ctx), client: fn(&mut Ctx), expect: &'static [Expect]) -> Instance {
    let case = Box::leak(Box::new(Case {
        id: "selftest.case",
        server: Side::new(server),
        client: Side::new(client),
        expect,
        step_deadline: SHORT,
        ..Case::DEFAULTS
    }));
    Instance {
        case,
        kind: Kind::Ipv4,
    }
}

fn listen_and_wait(ctx: &mut Ctx) {
    let (listener, port) = ctx.listen(1);
    ctx.sync_with("listening", port.into());
    let conn = ctx.accept(&listener);
    ctx.sync("connected");
    // The client never writes: this read blocks until the deadline kills us.
    ctx.read("read", &conn, 1);
}

fn connect_and_idle(ctx: &mut Ctx) {
    let port = ctx.sync_with("listening", 0) as u16;
    let _conn = ctx.connect(port);
    ctx.sync("connected");
    ctx.sync("never reached by the server");
}

fn a_hung_read_times_out_naming_step_and_call() -> Result<(), String> {
    let started = Instant::now();
    let r = run_case(case(listen_and_wait, connect_and_idle, &[]));
    check(
        r.verdict == Verdict::Timeout,
        format!("verdict {:?}", r.verdict),
    )?;
    check(
        r.failure
            .iter()
            .any(|d| d == "server hung in step 'connected' at call 'read'"),
        format!("failure {:?}", r.failure),
    )?;
    check(
        r.failure
            .iter()
            .any(|d| d == "client waits at barrier 'never reached by the server'"),
        format!("failure {:?}", r.failure),
    )?;
    check(
        started.elapsed() < SHORT * 5,
        format!("took {:?}", started.elapsed()),
    )
}

fn server_barrier_a(ctx: &mut Ctx) {
    ctx.sync("a");
}

fn client_barrier_b(ctx: &mut Ctx) {
    ctx.sync("b");
}

fn disagreeing_scripts_fail() -> Result<(), String> {
    let r = run_case(case(server_barrier_a, client_barrier_b, &[]));
    check(
        r.verdict == Verdict::Fail,
        format!("verdict {:?}", r.verdict),
    )?;
    check(
        r.failure
            .iter()
            .any(|d| d.contains("server waits at 'a', client at 'b'")),
        format!("failure {:?}", r.failure),
    )
}

fn panicking_server(_ctx: &mut Ctx) {
    panic!("setup went wrong");
}

fn idle(_ctx: &mut Ctx) {}

fn a_setup_panic_is_a_harness_failure() -> Result<(), String> {
    let r = run_case(case(panicking_server, idle, &[]));
    check(
        r.verdict == Verdict::Fail,
        format!("verdict {:?}", r.verdict),
    )?;
    check(
        r.failure
            .iter()
            .any(|d| d.contains("server script failed") && d.contains("setup went wrong")),
        format!("failure {:?}", r.failure),
    )
}

/// Forks a grandchild that would sleep for a minute, and returns without reaping it.
fn leaves_a_grandchild(_ctx: &mut Ctx) {
    // Safe: the side is single-threaded; the grandchild only calls sleep and _exit.
    if let Ok(nix::unistd::ForkResult::Child) = unsafe { nix::unistd::fork() } {
        std::thread::sleep(Duration::from_secs(60));
        unsafe { libc::_exit(0) };
    }
}

fn nothing_outlives_the_case() -> Result<(), String> {
    static EXPECT: &[Expect] = &[Expect {
        os: Os::Linux,
        kernel: Kernel::ANY,
        source: "a test's own",
        provenance: Provenance::FromSource,
        kinds: &[],
        server: &[("exit", is("exit 0"))],
        client: &[("exit", is("exit 0"))],
        wire: &[],
    }];
    let r = run_case(case(leaves_a_grandchild, idle, EXPECT));
    check(
        r.verdict == Verdict::Pass || Os::current() != Os::Linux,
        format!("{:?} {:?}", r.verdict, r.why()),
    )?;
    // No child of ours is left, running or zombie.
    match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
        Err(nix::errno::Errno::ECHILD) => Ok(()),
        other => Err(format!("a process outlived the case: {other:?}")),
    }
}

fn a_mismatch_is_a_failure_with_its_difference() -> Result<(), String> {
    static EXPECT: &[Expect] = &[Expect {
        os: Os::current(),
        kernel: Kernel::ANY,
        source: "a test's own",
        provenance: Provenance::FromSource,
        kinds: &[],
        server: &[("exit", is("exit 1"))],
        client: &[("exit", is("exit 0"))],
        wire: &[],
    }];
    let r = run_case(case(idle, idle, EXPECT));
    check(
        r.verdict == Verdict::Fail,
        format!("verdict {:?}", r.verdict),
    )?;
    check(
        r.failure == ["server #0 exit: expected exit 1, observed exit 0"],
        format!("failure {:?}", r.failure),
    )
}

fn check(ok: bool, what: String) -> Result<(), String> {
    ok.then_some(()).ok_or(what)
}

/// A named self-test: Ok, or what went wrong.
type SelfTest = (&'static str, fn() -> Result<(), String>);

const TESTS: &[SelfTest] = &[
    (
        "a_hung_read_times_out_naming_step_and_call",
        a_hung_read_times_out_naming_step_and_call,
    ),
    ("disagreeing_scripts_fail", disagreeing_scripts_fail),
    (
        "a_setup_panic_is_a_harness_failure",
        a_setup_panic_is_a_harness_failure,
    ),
    ("nothing_outlives_the_case", nothing_outlives_the_case),
    (
        "a_mismatch_is_a_failure_with_its_difference",
        a_mismatch_is_a_failure_with_its_difference,
    ),
];

fn main() -> std::process::ExitCode {
    let mut args = libtest_mimic::Arguments::from_args();
    // Whatever `--test-threads` says: one thread is libtest-mimic's "run each test on the main
    // thread", and the runner asserts that it forks from a single-threaded process. nextest
    // runs one test per process anyway.
    args.test_threads = Some(1);
    let trials = TESTS
        .iter()
        .map(|&(name, test)| libtest_mimic::Trial::test(name, move || Ok(test()?)))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
