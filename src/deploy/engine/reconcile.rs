//! Plan and execute: what differs between the file and AWS, in an order taken from the
//! dependency graph alone (creation along dependencies, deletion in the reverse),
//! never from the order of a list.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::error::{DeployError, Result};
use super::plan::{self, Action, Change, FieldChange, Plan};
use super::{concurrency, Ctx, Node, Observed, Owned, Registry};

type Id = (&'static str, String);

/// The plan, with what executing it needs.
pub struct Reconciled<S> {
    pub plan: Plan,
    /// Per change (same order as `plan.changes`): the spec to create, update or
    /// replace (with what AWS has, for an update or a replace), or the owned thing to
    /// delete.
    steps: Vec<Step<S>>,
}

impl<S> Reconciled<S> {
    /// The deletions of the plan: (index into `plan.changes`, kind, what is deleted).
    pub fn deletions(&self) -> impl Iterator<Item = (usize, &'static str, &Owned)> {
        self.steps.iter().enumerate().filter_map(|(i, s)| match s {
            Step::Delete { kind, owned } => Some((i, *kind, owned)),
            _ => None,
        })
    }
}

enum Step<S> {
    Put { node: usize, have: Option<Box<S>> },
    Replace { node: usize, have: Box<S> },
    Delete { kind: &'static str, owned: Owned },
}

/// Read everything and build the plan: no mutating call.
pub async fn reconcile<S: Registry>(ctx: &Ctx, nodes: &[Node<S>]) -> Result<Reconciled<S>> {
    let order = creation_order(nodes)?;
    // The listings and the reads at once: neither needs the other.
    let (owned, observed) = futures_util::future::try_join(
        S::list_everything(ctx, nodes),
        S::read_everything(nodes, ctx),
    )
    .await?;
    plan_for(ctx, nodes, &order, owned, observed)
}

/// The plan that creates or updates these nodes alone, deleting nothing (what must
/// exist before the rest: the repositories images are pushed to).
pub async fn reconcile_some<S: Registry>(ctx: &Ctx, nodes: &[Node<S>]) -> Result<Reconciled<S>> {
    let order = creation_order(nodes)?;
    let observed = S::read_everything(nodes, ctx).await?;
    plan_for(ctx, nodes, &order, Vec::new(), observed)
}

/// The nodes in an order where each comes after what it depends on (among those
/// ready, the earliest in the list first, so the plan reads in the list's order where
/// the graph allows). A dependency on a node that is not in the plan, or of a kind
/// the node's kind does not declare, or a cycle, is an error here, before any call.
fn creation_order<S: Registry>(nodes: &[Node<S>]) -> Result<Vec<usize>> {
    let index: BTreeMap<Id, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id(), i)).collect();
    if index.len() != nodes.len() {
        return Err(DeployError::Internal(
            "two nodes of the plan have the same kind and name".into(),
        ));
    }
    let declared: BTreeMap<&str, &[&str]> = S::kinds().into_iter().collect();
    let mut waiting_on: Vec<usize> = vec![0; nodes.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let kind = n.spec.kind();
        for d in &n.deps {
            let Some(&j) = index.get(d) else {
                return Err(DeployError::Internal(format!(
                    "{kind} {} depends on {} {}, which is not in the plan",
                    n.spec.name(),
                    d.0,
                    d.1
                )));
            };
            if !declared.get(kind).is_some_and(|k| k.contains(&d.0)) {
                return Err(DeployError::Internal(format!(
                    "{kind} {} depends on {} {}, a kind {kind} does not declare in DEPENDS_ON",
                    n.spec.name(),
                    d.0,
                    d.1
                )));
            }
            waiting_on[i] += 1;
            dependents[j].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..nodes.len()).filter(|i| waiting_on[*i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &k in &dependents[i] {
            waiting_on[k] -= 1;
            if waiting_on[k] == 0 {
                ready.insert(k);
            }
        }
    }
    if order.len() != nodes.len() {
        let stuck: Vec<String> = (0..nodes.len())
            .filter(|i| waiting_on[*i] > 0)
            .map(|i| format!("{} {}", nodes[i].spec.kind(), nodes[i].spec.name()))
            .collect();
        return Err(DeployError::Internal(format!(
            "the plan's dependencies form a cycle through {}",
            stuck.join(", ")
        )));
    }
    Ok(order)
}

/// The kinds in waves of deletion: each wave's kinds have nothing left that may
/// depend on them once the waves before it are deleted (the reverse of the kinds'
/// dependency graph; a kind's dependency on itself, a queue's dead-letter queue, does
/// not order anything).
pub(super) fn deletion_waves(
    kinds: &[(&'static str, &'static [&'static str])],
) -> Result<Vec<Vec<&'static str>>> {
    let mut left: BTreeMap<&'static str, BTreeSet<&'static str>> =
        kinds.iter().map(|(k, _)| (*k, BTreeSet::new())).collect();
    // left[k]: the kinds that depend on k and are not deleted yet.
    for (k, deps) in kinds {
        for d in deps.iter().filter(|d| *d != k) {
            match left.get_mut(d) {
                Some(set) => {
                    set.insert(k);
                }
                None => {
                    return Err(DeployError::Internal(format!(
                        "kind {k} depends on {d}, which is not registered"
                    )))
                }
            }
        }
    }
    let mut waves = Vec::new();
    while !left.is_empty() {
        let wave: Vec<&'static str> = left
            .iter()
            .filter(|(_, dependents)| dependents.is_empty())
            .map(|(k, _)| *k)
            .collect();
        if wave.is_empty() {
            return Err(DeployError::Internal(format!(
                "the kinds' dependencies form a cycle through {}",
                left.keys().copied().collect::<Vec<_>>().join(", ")
            )));
        }
        for k in &wave {
            left.remove(k);
        }
        for dependents in left.values_mut() {
            dependents.retain(|d| !wave.contains(d));
        }
        waves.push(wave);
    }
    Ok(waves)
}

fn plan_for<S: Registry>(
    ctx: &Ctx,
    nodes: &[Node<S>],
    order: &[usize],
    owned: Vec<(&'static str, Vec<Owned>)>,
    observed: Vec<Observed<S>>,
) -> Result<Reconciled<S>> {
    let mut observed: Vec<Option<Observed<S>>> = observed.into_iter().map(Some).collect();
    let mut changes = Vec::new();
    let mut steps = Vec::new();
    let mut changed: BTreeSet<Id> = BTreeSet::new();
    for &i in order {
        let node = &nodes[i];
        let (kind, name) = node.id();
        let seen = observed[i].take().unwrap_or(Observed::Absent);
        let (action, fields, step) = match seen {
            Observed::Absent => (
                Action::Create,
                Vec::new(),
                Step::Put {
                    node: i,
                    have: None,
                },
            ),
            // Not the stack's, but usable as it is (a shared cluster): no change.
            Observed::Foreign(_) if node.spec.shared_ok() => continue,
            Observed::Foreign(why) => return Err(DeployError::NotOwned { kind, name, why }),
            Observed::Present(have) => {
                let fields = plan::diff(&have.to_json(), &node.spec.to_json());
                if let Some(reason) = node.spec.replace_reason(&have) {
                    let mut fields = fields;
                    fields.insert(0, FieldChange::note(format!("replaced: {reason}")));
                    let step = Step::Replace {
                        node: i,
                        have: Box::new(have),
                    };
                    (Action::Replace, fields, step)
                } else {
                    let dep_changed =
                        node.spec.follows_deps() && node.deps.iter().any(|d| changed.contains(d));
                    let fields = if fields.is_empty() && dep_changed {
                        node.deps
                            .iter()
                            .filter(|d| changed.contains(*d))
                            .map(|(k, n)| {
                                FieldChange::note(format!("{k} {n} changed: rolled out again"))
                            })
                            .collect()
                    } else {
                        fields
                    };
                    if fields.is_empty() {
                        continue;
                    }
                    let step = Step::Put {
                        node: i,
                        have: Some(Box::new(have)),
                    };
                    (Action::Update, fields, step)
                }
            }
        };
        changed.insert((kind, name.clone()));
        changes.push(Change {
            action,
            kind,
            name,
            fields,
        });
        steps.push(step);
    }
    // What the stack owns and the file no longer has, dependents first.
    let wanted: BTreeSet<Id> = nodes.iter().map(Node::id).collect();
    let owned: BTreeMap<&'static str, Vec<Owned>> = owned.into_iter().collect();
    for wave in deletion_waves(&S::kinds())? {
        for kind in wave {
            for o in owned.get(kind).into_iter().flatten() {
                if wanted.contains(&(kind, o.name.clone())) {
                    continue;
                }
                changes.push(Change {
                    action: Action::Delete,
                    kind,
                    name: o.name.clone(),
                    fields: Vec::new(),
                });
                steps.push(Step::Delete {
                    kind,
                    owned: o.clone(),
                });
            }
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

/// Execute a plan: creates, updates and replaces along the dependency graph (a
/// resource starts when everything it depends on is done; a replace deletes, then
/// creates), then deletions in waves, dependents first. Each finished change is
/// reported to `progress` with its own duration. Stops at the first error, after the
/// calls in flight finish; what is done stays done, and the next apply goes on from
/// there.
pub async fn execute<S: Registry>(
    ctx: &Ctx,
    nodes: &[Node<S>],
    r: &Reconciled<S>,
    progress: &mut dyn FnMut(&Change, std::time::Duration),
) -> Result<usize> {
    let mut done = 0;
    let puts: Vec<usize> = (0..r.steps.len())
        .filter(|i| !matches!(r.steps[*i], Step::Delete { .. }))
        .collect();
    let step_node = |s: usize| match &r.steps[s] {
        Step::Put { node, .. } | Step::Replace { node, .. } => Some(*node),
        Step::Delete { .. } => None,
    };
    let pending_ids: BTreeMap<Id, usize> = puts
        .iter()
        .filter_map(|s| step_node(*s).map(|n| (nodes[n].id(), *s)))
        .collect();
    let mut waiting: Vec<usize> = puts;
    let mut finished: BTreeSet<usize> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    let mut first_error: Option<DeployError> = None;
    loop {
        if first_error.is_none() {
            let mut still = Vec::new();
            for step in waiting.drain(..) {
                let Some(node) = step_node(step) else {
                    continue;
                };
                // A dependency without a step has nothing to do (it was checked to be
                // in the plan when the plan was made).
                let ready = nodes[node]
                    .deps
                    .iter()
                    .all(|d| pending_ids.get(d).is_none_or(|s| finished.contains(s)));
                if ready && running.len() < concurrency() {
                    let spec = &nodes[node].spec;
                    let st = &r.steps[step];
                    running.push(async move {
                        let started = Instant::now();
                        let res = match st {
                            Step::Put { have: None, .. } => spec.create(ctx).await,
                            Step::Put { have: Some(h), .. } => spec.update(h, ctx).await,
                            Step::Replace { have, .. } => {
                                match S::delete(spec.kind(), &have.owned(), ctx).await {
                                    Ok(()) => spec.create(ctx).await,
                                    Err(e) => Err(e),
                                }
                            }
                            Step::Delete { .. } => Ok(()),
                        };
                        (step, res, started.elapsed())
                    });
                } else {
                    still.push(step);
                }
            }
            waiting = still;
        }
        let Some((step, res, took)) = running.next().await else {
            break;
        };
        match res {
            Ok(()) => {
                finished.insert(step);
                done += 1;
                progress(&r.plan.changes[step], took);
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
        return Err(DeployError::Internal(
            "the plan's dependencies form a cycle".into(),
        ));
    }
    // Deletions, wave by wave (they were planned in that order), each wave at once.
    let deletes: Vec<usize> = (0..r.steps.len())
        .filter(|i| matches!(r.steps[*i], Step::Delete { .. }))
        .collect();
    let waves = deletion_waves(&S::kinds())?;
    let wave_of = |kind: &str| waves.iter().position(|w| w.contains(&kind));
    let mut i = 0;
    while i < deletes.len() {
        let Step::Delete { kind, .. } = &r.steps[deletes[i]] else {
            break;
        };
        let wave = wave_of(kind);
        let group: Vec<usize> = deletes[i..]
            .iter()
            .copied()
            .take_while(
                |s| matches!(&r.steps[*s], Step::Delete { kind: k, .. } if wave_of(k) == wave),
            )
            .collect();
        i += group.len();
        let results: Vec<(usize, Result<()>, std::time::Duration)> =
            futures_util::stream::iter(group.iter().map(|s| {
                let s = *s;
                async move {
                    let started = Instant::now();
                    let res = match &r.steps[s] {
                        Step::Delete { kind, owned } => S::delete(kind, owned, ctx).await,
                        _ => Ok(()),
                    };
                    (s, res, started.elapsed())
                }
            }))
            .buffer_unordered(concurrency())
            .collect()
            .await;
        for (s, res, took) in results {
            match res {
                Ok(()) => {
                    done += 1;
                    progress(&r.plan.changes[s], took);
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
