//! Deadlock diagnosis through a wait-for graph.
//!
//! Nodes are goroutines; an edge `a -> b` means "a waits on a resource that b holds". Only waits
//! whose releasers are known exactly make edges: waits on a resource whose kind says its
//! releasers are its holders (`ResourceKind::released_by_holders`: mutexes, rwmutexes, semaphores,
//! and `once` with the goroutine running the first call), alone and with no timer
//! (`Wait::exact_holders`). A channel, a wait group or a cond could be released by any live
//! goroutine that can reach it, which the harness cannot know; such a wait is treated as possibly
//! releasable (the approximation only ever goes upward), so it never produces a false cycle:
//! uncertain cases are left to the global deadlock check and to the leak check at the end.
//!
//! A goroutine is *stuck* when it is blocked on an exact wait, with no timer to wake it, and every
//! holder of that resource is stuck too (or has exited). The stuck set is the greatest fixpoint
//! of that rule over the part of the graph reachable from a goroutine that just blocked, so the
//! check costs the length of the holder chains, not the number of goroutines. If the goroutine
//! that just blocked is stuck, either a cycle closed (a deadlock, even while unrelated goroutines
//! keep running) or its chain ends at a holder that exited (a partial deadlock).

use std::collections::BTreeMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::task::TaskId;

/// What the graph needs to know about one goroutine.
pub(crate) enum NodeInfo {
    /// Blocked on an exact wait with no timer: the goroutines that hold the resource.
    Waits(Vec<TaskId>),
    /// Exited (a holder that can never release).
    Exited,
    /// Anything else: running, runnable, sleeping, or blocked on an uncertain wait.
    Free,
}

/// The result of a check from one goroutine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Diagnosis {
    /// A cycle: the goroutines in wait order, starting with the one on the path from the start.
    Cycle {
        path: Vec<TaskId>,
        cycle: Vec<TaskId>,
    },
    /// Stuck behind holders that exited: the chain from the start.
    Orphaned { chain: Vec<TaskId> },
}

/// Runs the check from `start`, asking `info` about each goroutine reached.
pub(crate) fn diagnose(
    start: TaskId,
    mut info: impl FnMut(TaskId) -> NodeInfo,
) -> Option<Diagnosis> {
    // Explore the holder graph reachable from `start`.
    let mut graph: DiGraph<TaskId, ()> = DiGraph::new();
    let mut index: BTreeMap<TaskId, NodeIndex> = BTreeMap::new();
    let mut kinds: BTreeMap<TaskId, NodeInfo> = BTreeMap::new();
    let mut todo = vec![start];
    index.insert(start, graph.add_node(start));
    while let Some(t) = todo.pop() {
        let node = info(t);
        if let NodeInfo::Waits(holders) = &node {
            for &h in holders {
                let hn = *index.entry(h).or_insert_with(|| {
                    todo.push(h);
                    graph.add_node(h)
                });
                graph.add_edge(index[&t], hn, ());
            }
        }
        kinds.insert(t, node);
    }
    if !matches!(kinds.get(&start), Some(NodeInfo::Waits(_))) {
        return None;
    }
    // Greatest fixpoint: assume every waiting goroutine stuck, drop any with a free holder.
    let mut stuck: BTreeMap<TaskId, bool> = kinds
        .iter()
        .map(|(&t, k)| (t, !matches!(k, NodeInfo::Free)))
        .collect();
    loop {
        let mut changed = false;
        for (&t, k) in &kinds {
            if let NodeInfo::Waits(holders) = k
                && stuck[&t]
                && holders.iter().any(|h| !stuck[h])
            {
                stuck.insert(t, false);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    if !stuck[&start] {
        return None;
    }
    // A strongly connected component with a cycle, among stuck goroutines, reachable from start.
    for scc in tarjan_scc(&graph) {
        let has_cycle = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if !has_cycle || !scc.iter().all(|n| stuck[&graph[*n]]) {
            continue;
        }
        if let Some(path) = path_into(&graph, index[&start], &scc) {
            let entry = *path.last().expect("a path has an end");
            let cycle = cycle_from(&graph, entry, &scc);
            let path = path[..path.len() - 1].iter().map(|n| graph[*n]).collect();
            return Some(Diagnosis::Cycle { path, cycle });
        }
    }
    // No cycle: the chain ends at holders that exited.
    let mut chain = vec![start];
    let mut at = start;
    while let Some(NodeInfo::Waits(holders)) = kinds.get(&at) {
        match holders.iter().find(|h| stuck[h] && !chain.contains(h)) {
            Some(&h) => {
                chain.push(h);
                at = h;
            }
            None => break,
        }
    }
    Some(Diagnosis::Orphaned { chain })
}

/// The shortest path (by BFS, in node order) from `from` to any node of `scc`.
fn path_into(
    graph: &DiGraph<TaskId, ()>,
    from: NodeIndex,
    scc: &[NodeIndex],
) -> Option<Vec<NodeIndex>> {
    let mut prev: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    let mut seen = std::collections::BTreeSet::from([from]);
    while let Some(n) = queue.pop_front() {
        if scc.contains(&n) {
            let mut path = vec![n];
            let mut at = n;
            while let Some(&p) = prev.get(&at) {
                path.push(p);
                at = p;
            }
            path.reverse();
            return Some(path);
        }
        let mut next: Vec<NodeIndex> = graph.neighbors(n).collect();
        next.sort();
        for m in next {
            if seen.insert(m) {
                prev.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    None
}

/// The cycle through `entry` inside `scc`, in wait order.
fn cycle_from(graph: &DiGraph<TaskId, ()>, entry: NodeIndex, scc: &[NodeIndex]) -> Vec<TaskId> {
    if graph.contains_edge(entry, entry) && scc.len() == 1 {
        return vec![graph[entry]];
    }
    // BFS inside the component from the entry's successors back to the entry.
    let mut prev: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::new();
    let mut starts: Vec<NodeIndex> = graph.neighbors(entry).filter(|m| scc.contains(m)).collect();
    starts.sort();
    for s in starts {
        if prev.insert(s, entry).is_none() {
            queue.push_back(s);
        }
    }
    while let Some(n) = queue.pop_front() {
        if n == entry {
            break;
        }
        let mut next: Vec<NodeIndex> = graph.neighbors(n).filter(|m| scc.contains(m)).collect();
        next.sort();
        for m in next {
            if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(m) {
                e.insert(n);
                queue.push_back(m);
            }
        }
    }
    let mut cycle = vec![graph[entry]];
    let mut at = prev[&entry];
    while at != entry {
        cycle.push(graph[at]);
        at = prev[&at];
    }
    cycle[1..].reverse();
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(u64, &[u64])], exited: &[u64]) -> impl FnMut(TaskId) -> NodeInfo {
        let edges: BTreeMap<u64, Vec<u64>> = edges.iter().map(|(a, b)| (*a, b.to_vec())).collect();
        let exited = exited.to_vec();
        move |t: TaskId| {
            if exited.contains(&t.0) {
                NodeInfo::Exited
            } else if let Some(h) = edges.get(&t.0) {
                NodeInfo::Waits(h.iter().map(|&x| TaskId(x)).collect())
            } else {
                NodeInfo::Free
            }
        }
    }

    #[test]
    fn a_two_goroutine_inversion_is_a_cycle_in_wait_order() {
        let d = diagnose(TaskId(2), graph(&[(2, &[3]), (3, &[2])], &[]));
        assert_eq!(
            d,
            Some(Diagnosis::Cycle {
                path: vec![],
                cycle: vec![TaskId(2), TaskId(3)]
            })
        );
    }

    #[test]
    fn locking_twice_is_a_cycle_of_one() {
        let d = diagnose(TaskId(1), graph(&[(1, &[1])], &[]));
        assert_eq!(
            d,
            Some(Diagnosis::Cycle {
                path: vec![],
                cycle: vec![TaskId(1)]
            })
        );
    }

    #[test]
    fn a_waiter_behind_a_cycle_is_stuck_with_its_path() {
        let d = diagnose(
            TaskId(5),
            graph(&[(5, &[2]), (2, &[3]), (3, &[4]), (4, &[2])], &[]),
        );
        assert_eq!(
            d,
            Some(Diagnosis::Cycle {
                path: vec![TaskId(5)],
                cycle: vec![TaskId(2), TaskId(3), TaskId(4)]
            })
        );
    }

    #[test]
    fn a_free_holder_breaks_certainty() {
        assert_eq!(
            diagnose(TaskId(2), graph(&[(2, &[3]), (3, &[4])], &[])),
            None
        );
        // Two readers hold the lock; one of them can still run.
        assert_eq!(
            diagnose(TaskId(2), graph(&[(2, &[3, 4]), (3, &[2])], &[])),
            None
        );
    }

    #[test]
    fn a_holder_that_exited_orphans_its_waiters() {
        let d = diagnose(TaskId(2), graph(&[(2, &[3])], &[3]));
        assert_eq!(
            d,
            Some(Diagnosis::Orphaned {
                chain: vec![TaskId(2), TaskId(3)]
            })
        );
    }
}
