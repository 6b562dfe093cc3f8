//! The process-wide fault plan and counters, seen from another thread. A separate binary because a
//! process-wide plan would fail other tests' calls.

use bpfload_syscall::syscall::{install_fault_plan, process_calls, thread_calls};
use bpfload_syscall::uapi::{bpf_cmd, bpf_map_type};
use bpfload_syscall::{map, with_syscall_override, Errno, FaultPlan, FaultStats, MapCreateAttr};

fn attr() -> MapCreateAttr<'static> {
    MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        ..Default::default()
    }
}

#[test]
fn process_plan_fails_nth_call_on_any_thread() {
    let before = process_calls(bpf_cmd::BPF_MAP_CREATE);
    let guard = install_fault_plan(FaultPlan::nth_of(bpf_cmd::BPF_MAP_CREATE, 2, Errno::ENOMEM));
    let results = std::thread::spawn(|| {
        let r = with_syscall_override(
            |_, _, _| Ok(std::fs::File::open("/dev/null").unwrap().into()),
            || {
                (0..3)
                    .map(|_| map::create(&attr()).map(drop).map_err(|e| e.errno()))
                    .collect::<Vec<_>>()
            },
        );
        (r, thread_calls(bpf_cmd::BPF_MAP_CREATE))
    })
    .join()
    .unwrap();
    assert_eq!(results.0, vec![Ok(()), Err(Errno::ENOMEM), Ok(())]);
    assert_eq!(results.1, 3, "thread-local counter of the worker");
    assert_eq!(
        guard.stats(),
        FaultStats {
            matched: 3,
            injected: 1
        }
    );
    drop(guard);
    // This thread made no calls; the process-wide counter saw the worker's three.
    assert_eq!(thread_calls(bpf_cmd::BPF_MAP_CREATE), 0);
    assert_eq!(process_calls(bpf_cmd::BPF_MAP_CREATE) - before, 3);

    // Uninstalled: nothing is failed any more.
    let ok = with_syscall_override(
        |_, _, _| Ok(std::fs::File::open("/dev/null").unwrap().into()),
        || map::create(&attr()).is_ok(),
    );
    assert!(ok);
}
