//! The one reconciler behind every verb. Each AWS resource kind implements [`Kind`]
//! (read, create, update, list what the stack owns, delete, what it cannot change in
//! place) in its own file under `resources/`, which registers it in one list as a
//! [`Registry`]. The engine reads every desired resource (in parallel, batched where
//! the kind can), compares it with the file field by field, adds the deletion of what
//! the stack owns and the file no longer has, and executes that plan along the
//! dependency graph with bounded concurrency ([`reconcile`]). `diff` prints the plan,
//! `apply` executes it, `delete` is the plan of an empty file.
//!
//! The engine knows no kind: it is tested on its own with a fake one (`tests.rs`).

pub mod aws;
pub mod error;
pub mod plan;
mod reconcile;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use futures_util::stream::StreamExt;
use serde::Serialize;
use serde_json::Value;

pub use self::aws::{concurrency, Aws, CONCURRENCY};
pub use reconcile::{execute, reconcile, reconcile_some, Reconciled};

use super::naming::{Where, STACK_TAG};
use error::{DeployError, Result};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What one run knows: the clients, the stack's identity, the caller's account.
pub struct Ctx {
    pub aws: Aws,
    pub stack: String,
    pub cluster: String,
    pub account: String,
    pub region: String,
    memo: std::sync::Mutex<BTreeMap<String, Memo>>,
}

type Memo = std::sync::Arc<tokio::sync::OnceCell<std::sync::Arc<dyn std::any::Any + Send + Sync>>>;

impl Ctx {
    /// The account and region ARNs are written for.
    pub fn at(&self) -> Where {
        Where {
            region: self.region.clone(),
            account: self.account.clone(),
        }
    }

    pub fn new(aws: Aws, stack: &str, cluster: &str, account: String) -> Ctx {
        let region = aws.region.clone();
        Ctx {
            aws,
            stack: stack.to_owned(),
            cluster: cluster.to_owned(),
            account,
            region,
            memo: Default::default(),
        }
    }

    /// Forget the reads made once a run ([`Ctx::once`]), so the next plan reads AWS
    /// again (under the lock, what another run may have changed meanwhile).
    pub fn forget_reads(&self) {
        match self.memo.lock() {
            Ok(mut m) => m.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }

    /// Whether tags (as key/value pairs) mark a resource as this stack's.
    pub fn owns<'a>(&self, mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        tags.any(|(k, v)| k == STACK_TAG && v == self.stack)
    }

    /// Why tags do not mark a resource as this stack's.
    pub fn why_not<'a>(&self, tags: impl Iterator<Item = (&'a str, &'a str)>) -> String {
        match tags.filter(|(k, _)| *k == STACK_TAG).map(|(_, v)| v).next() {
            Some(other) => format!("tag {STACK_TAG}={other}"),
            None => format!("no {STACK_TAG} tag"),
        }
    }

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
        value
            .downcast::<T>()
            .map_err(|_| DeployError::Internal(format!("memo {key} read with another type")))
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

impl<T> Observed<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Observed<U> {
        match self {
            Observed::Absent => Observed::Absent,
            Observed::Foreign(w) => Observed::Foreign(w),
            Observed::Present(t) => Observed::Present(f(t)),
        }
    }
}

/// Something of a kind that the stack owns in AWS: its name, and what deleting it
/// needs (an ARN, a URL, a parent id).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The kinds a resource of this kind may depend on: created before it, deleted
    /// after it. The engine refuses a node whose dependency is of another kind, and
    /// orders deletions (which have no node) by this graph.
    const DEPENDS_ON: &'static [&'static str] = &[];
    /// An existing one that is not the stack's may be used as it is (never changed or
    /// deleted) instead of being an error: the ECS cluster.
    const SHARED_OK: bool = false;
    /// Changed whenever a resource it depends on changes (a service rolls to a new
    /// task definition revision).
    const FOLLOWS_DEPS: bool = false;

    fn name(&self) -> String;

    /// What deleting this one (as read) needs; by default its name.
    fn owned(&self) -> Owned {
        Owned {
            name: self.name(),
            handle: self.name(),
        }
    }

    /// Why `have` cannot become `self` in place (the field that forces it), so the
    /// plan replaces it: delete, then create.
    fn replace_reason(&self, _have: &Self) -> Option<String> {
        None
    }

    /// The current state, `Absent` only on AWS's own not-found answer.
    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>>;

    /// Read many (a kind whose API batches overrides this).
    async fn read_all(want: &[&Self], ctx: &Ctx) -> Result<Vec<Observed<Self>>> {
        bounded(want.iter().map(|w| w.read(ctx))).await
    }

    async fn create(&self, ctx: &Ctx) -> Result<()>;

    /// Make it match `self`, from `have` (what AWS has); each kind decides what to
    /// send from its typed fields. Called with nothing different only for a kind that
    /// [`Kind::FOLLOWS_DEPS`], when a dependency changed.
    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()>;

    /// Everything of this kind that the stack owns (every list paged; an error is an
    /// error, never "nothing there"). Names in `wanted` (the file's own, read anyway
    /// and never deleted) need no ownership check and may be left out.
    async fn list_owned(ctx: &Ctx, wanted: &BTreeSet<String>) -> Result<Vec<Owned>>;

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()>;
}

/// Every kind, as one type the engine drives: the `resources` registry's enum of
/// specs, or a test's fake.
#[allow(async_fn_in_trait)]
pub trait Registry: Serialize + Clone + std::fmt::Debug + Sized {
    /// Each kind with the kinds it may depend on ([`Kind::DEPENDS_ON`]).
    fn kinds() -> Vec<(&'static str, &'static [&'static str])>;
    fn kind(&self) -> &'static str;
    fn name(&self) -> String;
    fn shared_ok(&self) -> bool;
    fn follows_deps(&self) -> bool;
    fn owned(&self) -> Owned;
    fn replace_reason(&self, have: &Self) -> Option<String>;
    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
    async fn create(&self, ctx: &Ctx) -> Result<()>;
    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()>;
    async fn delete(kind: &str, owned: &Owned, ctx: &Ctx) -> Result<()>;
    /// Read every node, each kind's batch at once; the result is in node order.
    async fn read_everything(nodes: &[Node<Self>], ctx: &Ctx) -> Result<Vec<Observed<Self>>>;
    /// What the stack owns, kind by kind.
    async fn list_everything(
        ctx: &Ctx,
        nodes: &[Node<Self>],
    ) -> Result<Vec<(&'static str, Vec<Owned>)>>;
}

/// A resource the file wants, with what it depends on (kind and name of other nodes).
#[derive(Debug, Clone)]
pub struct Node<S> {
    pub spec: S,
    pub deps: Vec<(&'static str, String)>,
}

impl<S: Registry> Node<S> {
    pub fn id(&self) -> (&'static str, String) {
        (self.spec.kind(), self.spec.name())
    }
}

/// Whether `want` differs from `have` in anything but what `clear` sets aside (its
/// tags, say): a typed comparison, through the kind's own fields.
pub fn differs_besides<T: Kind>(want: &T, have: &T, clear: impl Fn(&mut T)) -> bool {
    let (mut a, mut b) = (want.clone(), have.clone());
    clear(&mut a);
    clear(&mut b);
    serde_json::to_value(&a).ok() != serde_json::to_value(&b).ok()
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
