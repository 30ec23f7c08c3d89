//! The engine on its own, with a fake kind in an in-memory cloud (no AWS, no moto):
//! creation order from the graph, a dependency outside the plan refused, replace,
//! deletion in reverse, a foreign resource refused, and resume after a failure at
//! every step.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::error::{DeployError, Result};
use super::plan::Action;
use super::{execute, reconcile, Aws, Ctx, Node, Observed, Owned, Registry};

const BASE: &str = "base";
const MID: &str = "mid";
const TOP: &str = "top";

/// One resource of the fake cloud: `size` changes in place, `shape` only by replace.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Fake {
    #[serde(skip)]
    kind: &'static str,
    name: String,
    size: i32,
    shape: i32,
}

#[derive(Default)]
struct Cloud {
    /// (kind, name) → (the resource, its owner's stack).
    things: BTreeMap<(&'static str, String), (Fake, String)>,
    /// Every mutating call, in order: "create top t", "update mid m", ...
    calls: Vec<String>,
    /// Fail the mutating call with this index (0-based), once.
    fail_at: Option<usize>,
}

thread_local! {
    static CLOUD: RefCell<Cloud> = RefCell::new(Cloud::default());
}

fn mutate(call: String, f: impl FnOnce(&mut Cloud)) -> Result<()> {
    CLOUD.with(|c| {
        let mut c = c.borrow_mut();
        if c.fail_at == Some(c.calls.len()) {
            c.fail_at = None;
            return Err(DeployError::Aws {
                call: "Fake",
                resource: call,
                code: "InternalFailure".into(),
                message: "injected".into(),
            });
        }
        c.calls.push(call);
        f(&mut c);
        Ok(())
    })
}

fn calls() -> Vec<String> {
    CLOUD.with(|c| c.borrow().calls.clone())
}

impl Registry for Fake {
    fn kinds() -> Vec<(&'static str, &'static [&'static str])> {
        vec![(TOP, &[MID, BASE]), (BASE, &[]), (MID, &[BASE, MID])]
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn name(&self) -> String {
        self.name.clone()
    }
    fn shared_ok(&self) -> bool {
        false
    }
    fn follows_deps(&self) -> bool {
        self.kind == TOP
    }
    fn owned(&self) -> Owned {
        Owned {
            name: self.name.clone(),
            handle: self.name.clone(),
        }
    }
    fn replace_reason(&self, have: &Self) -> Option<String> {
        (self.shape != have.shape).then(|| "shape cannot change in place".into())
    }
    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let me = self.clone();
        let stack = ctx.stack.clone();
        mutate(format!("create {} {}", self.kind, self.name), move |c| {
            c.things.insert((me.kind, me.name.clone()), (me, stack));
        })
    }
    async fn update(&self, _have: &Self, _ctx: &Ctx) -> Result<()> {
        let me = self.clone();
        mutate(format!("update {} {}", self.kind, self.name), move |c| {
            if let Some(t) = c.things.get_mut(&(me.kind, me.name.clone())) {
                t.0 = me;
            }
        })
    }
    async fn delete(kind: &str, owned: &Owned, _ctx: &Ctx) -> Result<()> {
        let kind = [TOP, MID, BASE]
            .into_iter()
            .find(|k| *k == kind)
            .ok_or_else(|| DeployError::Internal(format!("no kind {kind}")))?;
        let name = owned.name.clone();
        mutate(format!("delete {kind} {name}"), move |c| {
            c.things.remove(&(kind, name));
        })
    }
    async fn read_everything(nodes: &[Node<Self>], ctx: &Ctx) -> Result<Vec<Observed<Self>>> {
        Ok(CLOUD.with(|c| {
            let c = c.borrow();
            nodes
                .iter()
                .map(|n| match c.things.get(&n.id()) {
                    None => Observed::Absent,
                    Some((f, owner)) if *owner == ctx.stack => Observed::Present(f.clone()),
                    Some((_, owner)) => Observed::Foreign(format!("stack {owner}'s")),
                })
                .collect()
        }))
    }
    async fn list_everything(
        ctx: &Ctx,
        _nodes: &[Node<Self>],
    ) -> Result<Vec<(&'static str, Vec<Owned>)>> {
        Ok(CLOUD.with(|c| {
            let c = c.borrow();
            [BASE, MID, TOP]
                .into_iter()
                .map(|k| {
                    let mine = c
                        .things
                        .iter()
                        .filter(|((kind, _), (_, owner))| *kind == k && *owner == ctx.stack)
                        .map(|((_, name), _)| Owned {
                            name: name.clone(),
                            handle: name.clone(),
                        })
                        .collect();
                    (k, mine)
                })
                .collect()
        }))
    }
}

fn node(kind: &'static str, name: &str, size: i32, deps: &[(&'static str, &str)]) -> Node<Fake> {
    Node {
        spec: Fake {
            kind,
            name: name.into(),
            size,
            shape: 0,
        },
        deps: deps.iter().map(|(k, n)| (*k, (*n).to_owned())).collect(),
    }
}

/// A stack listed out of order: the top first, its base last.
fn stack() -> Vec<Node<Fake>> {
    vec![
        node(TOP, "t", 1, &[(MID, "m"), (BASE, "b")]),
        node(MID, "m", 1, &[(BASE, "b")]),
        node(BASE, "b", 1, &[]),
    ]
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

async fn ctx(stack: &str) -> Ctx {
    // Clients are built (no call is made through them: the fake kind has none).
    Ctx::new(
        Aws::new(Some("eu-west-1")).await.unwrap(),
        stack,
        "c",
        "123456789012".into(),
    )
}

async fn apply(ctx: &Ctx, nodes: &[Node<Fake>]) -> Result<usize> {
    let r = reconcile(ctx, nodes).await?;
    execute(ctx, nodes, &r, &mut |_, _| {}).await
}

#[test]
fn creation_follows_the_graph_not_the_list() {
    run(async {
        let ctx = ctx("s").await;
        assert_eq!(apply(&ctx, &stack()).await.unwrap(), 3);
        assert_eq!(calls(), ["create base b", "create mid m", "create top t"]);
        // A second apply changes nothing.
        let r = reconcile(&ctx, &stack()).await.unwrap();
        assert!(r.plan.changes.is_empty(), "{:?}", r.plan.changes);
    })
}

#[test]
fn a_dependency_outside_the_plan_or_undeclared_or_circular_is_refused_before_any_call() {
    run(async {
        let ctx = ctx("s").await;
        let missing = vec![node(MID, "m", 1, &[(BASE, "nowhere")])];
        let e = reconcile(&ctx, &missing).await.err().expect("refused");
        assert!(e.to_string().contains("not in the plan"), "{e}");
        // base declares no dependency on mid.
        let undeclared = vec![node(BASE, "b", 1, &[(MID, "m")]), node(MID, "m", 1, &[])];
        let e = reconcile(&ctx, &undeclared).await.err().expect("refused");
        assert!(e.to_string().contains("does not declare"), "{e}");
        let cycle = vec![
            node(TOP, "t", 1, &[(MID, "m")]),
            node(MID, "m", 1, &[(BASE, "b")]),
            node(BASE, "b", 1, &[]),
            node(MID, "m2", 1, &[(MID, "m3")]),
            node(MID, "m3", 1, &[(MID, "m2")]),
        ];
        let e = reconcile(&ctx, &cycle).await.err().expect("refused");
        assert!(
            e.to_string().contains("cycle through mid m2, mid m3"),
            "{e}"
        );
        assert!(calls().is_empty(), "{:?}", calls());
    })
}

#[test]
fn a_change_that_cannot_be_made_in_place_is_a_replace_in_the_plan() {
    run(async {
        let ctx = ctx("s").await;
        apply(&ctx, &stack()).await.unwrap();
        let mut want = stack();
        want[1].spec.shape = 7;
        let r = reconcile(&ctx, &want).await.unwrap();
        let actions: Vec<(Action, &str)> = r
            .plan
            .changes
            .iter()
            .map(|c| (c.action, c.name.as_str()))
            .collect();
        // The mid is replaced; the top follows it (rolled out again).
        assert_eq!(actions, [(Action::Replace, "m"), (Action::Update, "t")]);
        let text = r.plan.to_string();
        assert!(text.contains("-/+ replace mid m"), "{text}");
        assert!(text.contains("shape cannot change in place"), "{text}");
        assert!(text.contains("1 to replace"), "{text}");
        let before = calls().len();
        execute(&ctx, &want, &r, &mut |_, _| {}).await.unwrap();
        assert_eq!(
            calls()[before..],
            ["delete mid m", "create mid m", "update top t"]
        );
        assert!(reconcile(&ctx, &want)
            .await
            .unwrap()
            .plan
            .changes
            .is_empty());
    })
}

#[test]
fn what_the_file_dropped_is_deleted_dependents_first() {
    run(async {
        let ctx = ctx("s").await;
        apply(&ctx, &stack()).await.unwrap();
        let before = calls().len();
        assert_eq!(apply(&ctx, &[]).await.unwrap(), 3);
        assert_eq!(
            calls()[before..],
            ["delete top t", "delete mid m", "delete base b"]
        );
    })
}

#[test]
fn another_stacks_resource_is_refused_and_nothing_is_changed() {
    run(async {
        let other = ctx("other").await;
        apply(&other, &[node(BASE, "b", 1, &[])]).await.unwrap();
        let before = calls().len();
        let ctx = ctx("s").await;
        match reconcile(&ctx, &stack()).await {
            Err(DeployError::NotOwned { kind, name, why }) => {
                assert_eq!((kind, name.as_str()), (BASE, "b"));
                assert!(why.contains("other"), "{why}");
            }
            other => panic!("expected NotOwned, got {:?}", other.map(|r| r.plan)),
        }
        // Nor does deleting this stack touch the other's.
        apply(&ctx, &[]).await.unwrap();
        assert_eq!(calls().len(), before);
    })
}

#[test]
fn an_apply_that_fails_at_any_step_is_finished_by_the_next() {
    // The mutating calls of a first apply, then of an update with a replace and a
    // delete: fail each one in turn, then apply again.
    let later = || {
        let mut v = stack();
        v[1].spec.shape = 2;
        v[2].spec.size = 5;
        v.remove(0);
        v
    };
    for phase in [0, 1] {
        for k in 0.. {
            let finished = run(async {
                CLOUD.with(|c| *c.borrow_mut() = Cloud::default());
                let ctx = ctx("s").await;
                if phase == 1 {
                    apply(&ctx, &stack()).await.unwrap();
                }
                let want = if phase == 0 { stack() } else { later() };
                let start = calls().len();
                CLOUD.with(|c| c.borrow_mut().fail_at = Some(start + k));
                if apply(&ctx, &want).await.is_ok() {
                    return true;
                }
                // The next apply finishes the job, and the one after changes nothing.
                apply(&ctx, &want).await.unwrap();
                let r = reconcile(&ctx, &want).await.unwrap();
                assert!(
                    r.plan.changes.is_empty(),
                    "phase {phase}, failed call {k}: {:?}",
                    r.plan.changes
                );
                let kinds: BTreeSet<(&str, String)> =
                    CLOUD.with(|c| c.borrow().things.keys().cloned().collect());
                let wanted: BTreeSet<(&str, String)> = want.iter().map(Node::id).collect();
                assert_eq!(kinds, wanted, "phase {phase}, failed call {k}");
                false
            });
            if finished {
                // No call left to fail: every step was tried.
                assert!(k >= 3, "phase {phase}: only {k} steps");
                break;
            }
        }
    }
}
