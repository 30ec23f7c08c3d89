//! The verbs around the engine: connecting (the caller's account, never guessed),
//! the [`preflight`] that runs before any mutating call, the plan, waiting for
//! deployments ([`wait`]), [`status`] and [`logs`]; and the day-2 verbs that operate
//! what is deployed: [`run`] (in ECS, and on this machine: [`local`]), [`tasks`],
//! [`rollback`], [`exec`].

pub mod ci;
pub mod ci_roles;
pub mod exec;
pub mod guard;
pub mod import;
pub mod init;
pub mod local;
pub mod lock;
pub mod logs;
pub mod permissions;
pub mod policy;
pub mod preflight;
pub mod rollback;
pub mod run;
pub mod runs;
pub mod status;
pub mod tasks;
pub mod verbs;
pub mod wait;

use std::path::Path;

use super::components::{self, Rendered, Target};
use super::engine::error::{DeployError, Result};
use super::engine::{self, Aws, Ctx, Kind, Node, Reconciled, Registry};
use super::images::{self, Images, Mode};
use super::resources::{
    cloud_map, repository::Repository, security_group::SecurityGroup, service, task_definition,
    Spec,
};
use super::stack::{Resource, Stack};

pub use preflight::preflight;

/// The stack's region: the file's `region:`, else the environment's (`AWS_REGION`,
/// `AWS_DEFAULT_REGION`).
pub fn region_of(stack: &Stack) -> Option<String> {
    stack
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
}

/// Connect: the clients, and the account from STS. A stack that names its account
/// is deployed to that account only.
pub async fn connect(stack: &Stack) -> Result<Ctx> {
    let region = region_of(stack);
    let aws = Aws::new(region.as_deref()).await?;
    let account = aws.account().await?;
    if let Some(want) = &stack.account {
        if *want != account {
            return Err(DeployError::Preflight(format!(
                "the stack is for account {want}, but the credentials are account {account}'s"
            )));
        }
    }
    Ok(Ctx::new(aws, &stack.stack, &stack.cluster, account))
}

/// Render the stack for the connected account and region, with what is known of its
/// images.
pub async fn rendered(ctx: &Ctx, stack: &Stack, images: &Images) -> Result<Rendered> {
    // The secrets the tasks read, by their complete ARNs: a name alone can read as a
    // complete ARN when it ends in `-` and six characters (`db-secret`), and ECS wants
    // the complete one (ECS API reference, Secret: valueFrom; Secrets Manager User
    // Guide, "Troubleshoot": names ending in a hyphen and six characters).
    let names = stack.secret_names();
    let arns = engine::bounded(names.iter().map(|n| preflight::secret_arn(ctx, n))).await?;
    let secrets = names
        .into_iter()
        .zip(arns)
        .filter_map(|(n, a)| a.map(|a| (n, a)))
        .collect();
    Ok(components::render(
        stack,
        &Target {
            region: ctx.region.clone(),
            account: ctx.account.clone(),
            images: images.built.clone(),
            image_configs: images.configs.clone(),
            bosun_added: images.bosun_added.clone(),
            secrets,
            network: network(ctx, stack).await?,
            discovery: discovery(ctx, stack).await?,
        },
    ))
}

/// The default network where the file gives none and the stack runs tasks; said on
/// stderr once a run, so `diff` shows which VPC and subnets it picked.
pub async fn network(ctx: &Ctx, stack: &Stack) -> Result<Option<components::StackNetwork>> {
    if !stack.resources.values().any(|r| r.container().is_some()) {
        return Ok(None);
    }
    if let Some(file) = &stack.network {
        if !stack.has_ports() {
            return Ok(None);
        }
        let found = preflight::file_network(ctx, &file.subnets).await?;
        if let Some(n) = &found {
            ctx.once("file-network-said".into(), || async {
                eprintln!(
                    "network: the stack's own security group {} in {} beside the file's groups, letting its tasks reach its services' ports",
                    n.group.clone().unwrap_or_else(|| format!("{} (to be made)", super::naming::security_group(&stack.stack))),
                    n.vpc
                );
                Ok(())
            })
            .await?;
        }
        return Ok(found);
    }
    let n = preflight::default_network(ctx).await?;
    ctx.once("default-network-said".into(), || async {
        eprintln!(
            "network: the default VPC {} and its default subnets {}, with the stack's own security group {} (nothing in but its own tasks on its services' ports) and public IPs (the file gives no `network`)",
            n.vpc,
            n.subnets.join(", "),
            n.group.clone().unwrap_or_else(|| format!("{} (to be made)", super::naming::security_group(&stack.stack)))
        );
        Ok(())
    })
    .await?;
    Ok(Some(n))
}

/// Cloud Map as it is, where services have ports: the stack's namespace and its
/// services' ARNs (what the Cloud Map services and the ECS services name).
pub async fn discovery(ctx: &Ctx, stack: &Stack) -> Result<components::private_network::Discovery> {
    let mut d = components::private_network::Discovery::default();
    if !stack.has_ports() {
        return Ok(d);
    }
    let name = super::naming::namespace(&stack.stack);
    let Some((id, _)) = cloud_map::owned_namespace(ctx, &name).await? else {
        return Ok(d);
    };
    for (res, _) in stack.private_services() {
        let service = super::naming::discovery_service(res);
        if let Some(arn) = cloud_map::service_arn(ctx, &id, &service).await? {
            d.services.insert(res.to_owned(), arn);
        }
    }
    d.namespace_id = Some(id);
    Ok(d)
}

/// What other resources name by an id AWS gives, made first, in this order: the
/// stack's security group (its id goes into every service, schedule and launch
/// template) and Cloud Map's namespace, then the Cloud Map services (in the
/// namespace; their ARNs go into the ECS services).
const FIRST: [&[&str]; 2] = [
    &[SecurityGroup::KIND, cloud_map::Namespace::KIND],
    &[cloud_map::Service::KIND],
];

/// Before anything runs: create (or bring up to date) the resources whose ids the
/// others name ([`FIRST`]), each said on stderr before it is made; the reads are then
/// forgotten so the plan sees them.
pub async fn ensure_network(ctx: &Ctx, stack: &Stack, lock: &lock::Slot) -> Result<()> {
    if network(ctx, stack).await?.is_none() {
        return Ok(());
    }
    for round in 1..=FIRST.len() {
        // Each round with what the earlier ones made (which it depends on).
        let kinds: Vec<&str> = FIRST[..round].concat();
        let r = rendered(ctx, stack, &Images::default()).await?;
        preflight(ctx, &r.preflight).await?;
        let first: Vec<Node<Spec>> = r
            .nodes
            .into_iter()
            .filter(|n| kinds.contains(&n.spec.kind()))
            .collect();
        if first.is_empty() {
            continue;
        }
        let mut plan = engine::reconcile_some(ctx, &first).await?;
        if plan.plan.changes.is_empty() {
            continue;
        }
        if !lock.held() {
            lock.take(ctx).await?;
            plan = engine::reconcile_some(ctx, &first).await?;
        }
        for c in &plan.plan.changes {
            eprintln!("{c}\n      (before the tasks that use it)");
        }
        engine::execute(ctx, &first, &plan, &mut |_, _| {}).await?;
        ctx.forget_reads();
    }
    Ok(())
}

/// The stack's images for a verb: built (and for apply pushed, the stack's ECR
/// repositories made first); see [`images::prepare`].
pub async fn images(
    ctx: &Ctx,
    file: &Path,
    stack: &Stack,
    bosun: &Path,
    mode: Mode,
    lock: Option<&lock::Slot>,
) -> Result<Images> {
    images::prepare(
        ctx,
        file,
        stack,
        bosun,
        mode,
        async |added: &std::collections::BTreeSet<String>| {
            ensure_repositories(ctx, stack, added, lock).await
        },
        async |names: &[String]| deployed_images(ctx, stack, names).await,
    )
    .await
}

/// The images the deployed task definitions of `names` run (resource → image), read
/// from AWS: what `status` and an engine-less `diff` compare against, so an image
/// they did not build shows no change.
async fn deployed_images(
    ctx: &Ctx,
    stack: &Stack,
    names: &[String],
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for name in names {
        let family = crate::deploy::naming::family(&stack.stack, name);
        let Some(arn) = task_definition::latest_revision(ctx, &family).await? else {
            continue;
        };
        let d = ctx
            .aws
            .ecs
            .describe_task_definition()
            .task_definition(&arn)
            .send()
            .await
            .map_err(engine::error::failed("ECS DescribeTaskDefinition", &family))?;
        if let Some(image) = d
            .task_definition()
            .and_then(|t| t.container_definitions().first())
            .and_then(|c| c.image())
        {
            out.insert(name.clone(), image.to_owned());
        }
    }
    Ok(out)
}

/// Before images are pushed to ECR: preflight, then create (or bring in line) the
/// stack's ECR repositories alone, each change said on stderr before it is made.
async fn ensure_repositories(
    ctx: &Ctx,
    stack: &Stack,
    bosun_added: &std::collections::BTreeSet<String>,
    lock: Option<&lock::Slot>,
) -> Result<()> {
    let images = Images {
        bosun_added: bosun_added.clone(),
        ..Images::default()
    };
    let r = rendered(ctx, stack, &images).await?;
    preflight(ctx, &r.preflight).await?;
    let repos: Vec<Node<Spec>> = r
        .nodes
        .into_iter()
        .filter(|n| n.spec.kind() == Repository::KIND)
        .collect();
    if repos.is_empty() {
        return Ok(());
    }
    let mut plan = engine::reconcile_some(ctx, &repos).await?;
    if plan.plan.changes.is_empty() {
        return Ok(());
    }
    if let Some(lock) = lock.filter(|l| !l.held()) {
        lock.take(ctx).await?;
        plan = engine::reconcile_some(ctx, &repos).await?;
    }
    for c in &plan.plan.changes {
        eprintln!("{c}\n      (before its image is pushed there)");
    }
    engine::execute(ctx, &repos, &plan, &mut |_, _| {}).await?;
    Ok(())
}

/// Preflight, then read everything and plan: no mutating call.
pub async fn plan(
    ctx: &Ctx,
    stack: &Stack,
    images: &Images,
) -> Result<(Vec<Node<Spec>>, Reconciled<Spec>)> {
    let r = rendered(ctx, stack, images).await?;
    preflight(ctx, &r.preflight).await?;
    let reconciled = engine::reconcile(ctx, &r.nodes).await?;
    Ok((r.nodes, reconciled))
}

/// The plan of an empty stack: delete everything the stack owns.
pub async fn plan_delete(ctx: &Ctx) -> Result<(Vec<Node<Spec>>, Reconciled<Spec>)> {
    Ok((Vec::new(), engine::reconcile(ctx, &[]).await?))
}

/// What a day-2 verb acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// A worker service or a scheduled job.
    Any,
    /// A worker service only.
    Service,
}

/// The worker service or scheduled job `name` of the stack: a usage error (before any
/// AWS call) otherwise, naming those the file has.
pub fn runnable<'a>(stack: &'a Stack, name: &str, want: Runs) -> Result<&'a Resource> {
    let fits = |r: &Resource| match want {
        Runs::Any => r.container().is_some(),
        Runs::Service => matches!(r, Resource::WorkerService(_)),
    };
    let what = match want {
        Runs::Any => "a worker-service or scheduled-job",
        Runs::Service => "a worker-service",
    };
    match stack.resources.get(name) {
        Some(r) if fits(r) => Ok(r),
        found => {
            let names: Vec<&str> = stack
                .resources
                .iter()
                .filter(|(_, r)| fits(r))
                .map(|(n, _)| n.as_str())
                .collect();
            let is = match found {
                Some(r) => format!("'{name}' is a {}", r.kind()),
                None => format!("no resource named '{name}'"),
            };
            Err(DeployError::Usage(format!(
                "{is}: this verb takes {what} of stack {} ({})",
                stack.stack,
                if names.is_empty() {
                    "it has none".to_owned()
                } else {
                    names.join(", ")
                }
            )))
        }
    }
}

/// The task definition (ARN) a resource's tasks run now: a service's current one, a
/// job's latest revision. Refused when it is not deployed, or not the stack's.
pub async fn current_task_definition(ctx: &Ctx, stack: &Stack, name: &str) -> Result<String> {
    let family = super::naming::family(&stack.stack, name);
    let arn = match stack.resources.get(name) {
        Some(Resource::WorkerService(_)) => service::describe_owned(ctx, &family)
            .await?
            .and_then(|s| s.task_definition().map(str::to_owned)),
        _ => task_definition::latest_revision(ctx, &family).await?,
    };
    let Some(arn) = arn else {
        return Err(DeployError::Refused(format!(
            "{name} is not deployed (no {} {family} in cluster {}): bosun-deploy apply first",
            match stack.resources.get(name) {
                Some(Resource::WorkerService(_)) => "service",
                _ => "task definition",
            },
            stack.cluster
        )));
    };
    task_definition::describe_owned(ctx, &arn).await?;
    Ok(arn)
}

/// The ECS endpoint the clients call (`AWS_ENDPOINT_URL_ECS`, `AWS_ENDPOINT_URL`, or
/// the region's).
pub fn ecs_endpoint(region: &str) -> String {
    std::env::var("AWS_ENDPOINT_URL_ECS")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|_| format!("https://ecs.{region}.amazonaws.com"))
}

/// The id of a task from its ARN (`.../cluster/ID`).
pub fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
