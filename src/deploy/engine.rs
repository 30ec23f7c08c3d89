//! The one reconciler behind every verb. Each AWS resource kind implements [`Kind`]
//! (read, create, update, list what the stack owns, delete) in its own file under
//! `resources/`; [`crate::deploy::resources`] registers it in one line. The engine
//! reads every desired resource (in parallel, batched where the kind can), compares
//! it with the file field by field, adds the deletion of what the stack owns and the
//! file no longer has, and executes that plan along the dependency graph with bounded
//! concurrency. `diff` prints the plan, `apply` executes it, `delete` is the plan of
//! an empty file.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use super::aws::Aws;
use super::error::{DeployError, Result};
use super::plan::{self, Action, Change, FieldChange, Plan};
use super::resources::Spec;

/// How many AWS calls are in flight at once by default (and how many resources are
/// read or changed at once): well under AWS's per-account rates; throttling is
/// retried with back-off in any case.
pub const CONCURRENCY: usize = 16;

/// The concurrency in force: `BOSUN_DEPLOY_CONCURRENCY` (1..=64), else
/// [`CONCURRENCY`]. 1 makes every call one at a time.
pub fn concurrency() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("BOSUN_DEPLOY_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| (1..=64).contains(n))
            .unwrap_or(CONCURRENCY)
    })
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What one run knows: the clients, the stack's identity, the caller's account.
pub struct Ctx {
    pub aws: Aws,
    pub stack: String,
    pub cluster: String,
    pub account: String,
    pub region: String,
    /// The images this run built (resource → `REPO@sha256:…`).
    pub images: BTreeMap<String, String>,
    /// The configs of the prebuilt images run without a command.
    pub image_configs: BTreeMap<String, super::registry::ImageConfig>,
    owned_services: tokio::sync::OnceCell<BTreeSet<String>>,
    memo: std::sync::Mutex<BTreeMap<String, Memo>>,
}

type Memo = std::sync::Arc<tokio::sync::OnceCell<std::sync::Arc<dyn std::any::Any + Send + Sync>>>;

impl Ctx {
    pub fn new(aws: Aws, stack: &str, cluster: &str, account: String) -> Ctx {
        let region = aws.region.clone();
        Ctx {
            aws,
            stack: stack.to_owned(),
            cluster: cluster.to_owned(),
            account,
            region,
            images: BTreeMap::new(),
            image_configs: BTreeMap::new(),
            owned_services: tokio::sync::OnceCell::new(),
            memo: Default::default(),
        }
    }

    /// Whether tags (as key/value pairs) mark a resource as this stack's.
    pub fn owns<'a>(&self, mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        tags.any(|(k, v)| k == super::render::STACK_TAG && v == self.stack)
    }

    /// Why tags do not mark a resource as this stack's.
    pub fn why_not<'a>(&self, tags: impl Iterator<Item = (&'a str, &'a str)>) -> String {
        match tags
            .filter(|(k, _)| *k == super::render::STACK_TAG)
            .map(|(_, v)| v)
            .next()
        {
            Some(other) => format!("tag {}={other}", super::render::STACK_TAG),
            None => format!("no {} tag", super::render::STACK_TAG),
        }
    }

    /// The names of the ECS services in the stack's cluster that carry this stack's
    /// tag (read once per run; scaling targets and policies follow their service).
    pub async fn owned_services(&self) -> Result<&BTreeSet<String>> {
        self.owned_services
            .get_or_try_init(|| super::resources::service::list_owned_names(self))
            .await
    }
}

impl Ctx {
    /// A read made once a run and shared by everything that needs it (a listing that
    /// serves many resources' reads, the latest revision of a task definition). The
    /// key names the read; a failed read is not kept.
    pub async fn once<T, F, Fut>(&self, key: String, read: F) -> Result<std::sync::Arc<T>>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let cell = {
            let mut map = match self.memo.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            map.entry(key.clone()).or_default().clone()
        };
        let value = cell
            .get_or_try_init(|| async {
                Ok::<_, DeployError>(std::sync::Arc::new(read().await?)
                    as std::sync::Arc<dyn std::any::Any + Send + Sync>)
            })
            .await?
            .clone();
        value.downcast::<T>().map_err(|_| {
            DeployError::Precondition(format!("internal: memo {key} read with another type"))
        })
    }

    /// The ARN of the latest active revision of a task definition family, read once a
    /// run (the task definition and its service both need it).
    pub async fn latest_revision(&self, family: &str) -> Result<Option<String>> {
        let latest = self
            .once(format!("latest-revision:{family}"), || {
                super::resources::task_definition::latest(self, family)
            })
            .await?;
        Ok((*latest).clone())
    }
}

/// What a read found.
#[derive(Debug, Clone)]
pub enum Observed<T> {
    /// AWS's own not-found answer.
    Absent,
    /// It exists and is this stack's: its current state, in the shape of the spec.
    Present(T),
    /// It exists and is not this stack's (the reason).
    Foreign(String),
}

/// Something of a kind that the stack owns in AWS: its name, and what deleting it
/// needs (an ARN, a URL, a parent id).
#[derive(Debug, Clone)]
pub struct Owned {
    pub name: String,
    pub handle: String,
}

/// One AWS resource kind. The spec type is the exact API input (serde names as the
/// API's), so `render` prints it and `diff` compares it field by field with what
/// [`Kind::read`] returns in the same shape.
#[allow(async_fn_in_trait)]
pub trait Kind: Serialize + Clone + Sized {
    /// The kind as the plan names it ("queue", "IAM role").
    const KIND: &'static str;
    /// The key of this kind's list in `render`'s output.
    const PLURAL: &'static str;
    /// An existing one that is not the stack's may be used as it is (never changed or
    /// deleted) instead of being an error: the ECS cluster.
    const SHARED_OK: bool = false;
    /// Changed whenever a resource it depends on changes (a service rolls to a new
    /// task definition revision).
    const FOLLOWS_DEPS: bool = false;

    fn name(&self) -> String;

    /// The current state, `Absent` only on AWS's own not-found answer.
    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>>;

    /// Read many (a kind whose API batches overrides this).
    async fn read_all(want: &[&Self], ctx: &Ctx) -> Result<Vec<Observed<Self>>> {
        bounded(want.iter().map(|w| w.read(ctx))).await
    }

    async fn create(&self, ctx: &Ctx) -> Result<()>;

    /// Make it match `self`; `changes` are the fields that differ from `have`.
    async fn update(&self, have: &Self, changes: &[FieldChange], ctx: &Ctx) -> Result<()>;

    /// Everything of this kind that the stack owns (every list paged; an error is an
    /// error, never "nothing there"). Names in `wanted` (the file's own, read anyway
    /// and never deleted) need no ownership check and may be left out.
    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>>;

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()>;
}

/// Run futures with at most [`concurrency()`] at once, keeping their order; the first
/// error wins (the others still finish: no call is left half-sent).
pub async fn bounded<T>(
    futs: impl IntoIterator<Item = impl Future<Output = Result<T>>>,
) -> Result<Vec<T>> {
    let results: Vec<Result<T>> = futures_util::stream::iter(futs)
        .buffered(concurrency())
        .collect()
        .await;
    results.into_iter().collect()
}

/// Of the `candidates` (name, handle) a listing found, those not in `wanted` that
/// `is_ours` says are the stack's, checked [`concurrency()`] at a time.
pub async fn keep_owned<F, Fut>(
    candidates: impl IntoIterator<Item = (String, String)>,
    wanted: &BTreeSet<String>,
    is_ours: F,
) -> Result<Vec<Owned>>
where
    F: Fn(String, String) -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let checked = bounded(
        candidates
            .into_iter()
            .filter(|(name, _)| !wanted.contains(name))
            .map(|(name, handle)| {
                let ours = is_ours(name.clone(), handle.clone());
                async move { Ok(ours.await?.then_some(Owned { name, handle })) }
            }),
    )
    .await?;
    Ok(checked.into_iter().flatten().collect())
}

/// A resource the file wants, with what it depends on (indices into the node list).
#[derive(Debug, Clone)]
pub struct Node {
    pub spec: Spec,
    pub deps: Vec<(&'static str, String)>,
}

impl Node {
    pub fn id(&self) -> (&'static str, String) {
        (self.spec.kind(), self.spec.name())
    }
}

/// The plan, with what executing it needs.
pub struct Reconciled {
    pub plan: Plan,
    /// Per change (same order as `plan.changes`): the spec to create or update (with
    /// what AWS has, for an update), or the owned thing to delete.
    steps: Vec<Step>,
}

enum Step {
    Put {
        node: usize,
        have: Option<Box<Spec>>,
    },
    Delete {
        kind: &'static str,
        owned: Owned,
    },
}

/// Read everything and build the plan: no mutating call.
pub async fn reconcile(ctx: &Ctx, nodes: &[Node]) -> Result<Reconciled> {
    let owned = Spec::list_everything(ctx, nodes).await?;
    plan_for(ctx, nodes, owned).await
}

/// The plan that creates or updates these nodes alone, deleting nothing (what must
/// exist before the rest: the repositories images are pushed to).
pub async fn reconcile_some(ctx: &Ctx, nodes: &[Node]) -> Result<Reconciled> {
    plan_for(ctx, nodes, Vec::new()).await
}

async fn plan_for(
    ctx: &Ctx,
    nodes: &[Node],
    owned: Vec<(&'static str, Vec<Owned>)>,
) -> Result<Reconciled> {
    let observed = Spec::read_everything(nodes, ctx).await?;
    let mut changes = Vec::new();
    let mut steps = Vec::new();
    let mut changed: BTreeSet<(&'static str, String)> = BTreeSet::new();
    for (i, (node, seen)) in nodes.iter().zip(observed).enumerate() {
        let (kind, name) = node.id();
        let (action, fields, have) = match seen {
            Observed::Absent => (Some(Action::Create), Vec::new(), None),
            // Not the stack's, but usable as it is (a shared cluster): no change.
            Observed::Foreign(_) if node.spec.shared_ok() => (None, Vec::new(), None),
            Observed::Foreign(why) => return Err(DeployError::NotOwned { kind, name, why }),
            Observed::Present(have) => {
                let fields = plan::diff(&have.to_json(), &node.spec.to_json());
                let dep_changed =
                    node.spec.follows_deps() && node.deps.iter().any(|d| changed.contains(d));
                let fields = if fields.is_empty() && dep_changed {
                    node.deps
                        .iter()
                        .filter(|d| changed.contains(*d))
                        .map(|(k, n)| FieldChange {
                            path: format!("({k} {n})"),
                            old: None,
                            new: Some("changed: rolled out again".into()),
                        })
                        .collect()
                } else {
                    fields
                };
                let action = (!fields.is_empty()).then_some(Action::Update);
                (action, fields, Some(Box::new(have)))
            }
        };
        if let Some(action) = action {
            changed.insert((kind, name.clone()));
            changes.push(Change {
                action,
                kind,
                name,
                fields,
            });
            steps.push(Step::Put { node: i, have });
        }
    }
    // What the stack owns and the file no longer has, dependents first.
    let wanted: BTreeSet<(&'static str, String)> = nodes.iter().map(Node::id).collect();
    for (kind, list) in owned.into_iter().rev() {
        for o in list {
            if wanted.contains(&(kind, o.name.clone())) {
                continue;
            }
            changes.push(Change {
                action: Action::Delete,
                kind,
                name: o.name.clone(),
                fields: Vec::new(),
            });
            steps.push(Step::Delete { kind, owned: o });
        }
    }
    Ok(Reconciled {
        plan: Plan {
            stack: ctx.stack.clone(),
            account: ctx.account.clone(),
            region: ctx.region.clone(),
            changes,
        },
        steps,
    })
}

/// Execute a plan: creates and updates along the dependency graph (a resource starts
/// when everything it depends on is done), then deletions, dependents first. Each
/// finished change is reported to `progress`. Stops at the first error, after the
/// calls in flight finish; what is done stays done, and the next apply goes on from
/// there.
pub async fn execute(
    ctx: &Ctx,
    nodes: &[Node],
    r: &Reconciled,
    progress: &mut dyn FnMut(&Change, std::time::Duration),
) -> Result<usize> {
    let started = Instant::now();
    let mut done = 0;
    // Creates and updates.
    let puts: Vec<usize> = (0..r.steps.len())
        .filter(|i| matches!(r.steps[*i], Step::Put { .. }))
        .collect();
    let pending_ids: BTreeMap<(&'static str, String), usize> = puts
        .iter()
        .filter_map(|i| match &r.steps[*i] {
            Step::Put { node, .. } => Some((nodes[*node].id(), *i)),
            Step::Delete { .. } => None,
        })
        .collect();
    let mut waiting: Vec<usize> = puts.clone();
    let mut finished: BTreeSet<usize> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    let mut first_error: Option<DeployError> = None;
    loop {
        if first_error.is_none() {
            let mut still = Vec::new();
            for step in waiting.drain(..) {
                let Step::Put { node, have } = &r.steps[step] else {
                    continue;
                };
                let ready = nodes[*node]
                    .deps
                    .iter()
                    .all(|d| pending_ids.get(d).is_none_or(|s| finished.contains(s)));
                if ready && running.len() < concurrency() {
                    let spec = &nodes[*node].spec;
                    let change = &r.plan.changes[step];
                    running.push(async move {
                        let res = match have {
                            None => spec.create(ctx).await,
                            Some(h) => spec.update(h, &change.fields, ctx).await,
                        };
                        (step, res)
                    });
                } else {
                    still.push(step);
                }
            }
            waiting = still;
        }
        let Some((step, res)) = running.next().await else {
            break;
        };
        match res {
            Ok(()) => {
                finished.insert(step);
                done += 1;
                progress(&r.plan.changes[step], started.elapsed());
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if !waiting.is_empty() {
        return Err(DeployError::Precondition(
            "internal: the plan's dependencies form a cycle".into(),
        ));
    }
    // Deletions, kind by kind in reverse creation order (they were planned so).
    let deletes: Vec<usize> = (0..r.steps.len())
        .filter(|i| matches!(r.steps[*i], Step::Delete { .. }))
        .collect();
    let mut i = 0;
    while i < deletes.len() {
        let Step::Delete { kind, .. } = &r.steps[deletes[i]] else {
            break;
        };
        let group: Vec<usize> = deletes[i..]
            .iter()
            .copied()
            .take_while(|s| matches!(&r.steps[*s], Step::Delete { kind: k, .. } if k == kind))
            .collect();
        i += group.len();
        let results: Vec<(usize, Result<()>)> = futures_util::stream::iter(group.iter().map(|s| {
            let s = *s;
            async move {
                let Step::Delete { kind, owned } = &r.steps[s] else {
                    return (s, Ok(()));
                };
                (s, Spec::delete(kind, owned, ctx).await)
            }
        }))
        .buffer_unordered(concurrency())
        .collect()
        .await;
        for (s, res) in results {
            match res {
                Ok(()) => {
                    done += 1;
                    progress(&r.plan.changes[s], started.elapsed());
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(done)
}
