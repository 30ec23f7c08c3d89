//! What the stack file means in AWS: pure functions from a stack to the exact AWS API
//! inputs (as the APIs' JSON names them), no AWS call. `apply` reconciles these;
//! `render` prints them.
//!
//! One file per thing a user writes or a feature adds, each turning its part of the
//! stack into nodes (a resource of one AWS kind and what it depends on) with its own
//! defaults: [`queue`], [`task`] (a worker's or a job's container: log group, roles,
//! image repository, task definition), [`worker_service`], [`scale_to_zero`],
//! [`ec2_capacity`], [`scheduled_job`], [`private_network`] (services with ports: Cloud
//! Map and the stack's security group rules), and [`roles`] (the roles everything that runs
//! shares). Names come from [`crate::deploy::naming`]; no resource kind knows which
//! component made it.

pub mod bucket;
pub mod ec2_capacity;
pub mod forwarding;
pub mod private_network;
pub mod queue;
pub mod roles;
pub mod scale_to_zero;
pub mod scheduled_job;
pub mod task;
pub mod worker_service;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::engine::{Node, Registry};
use super::naming::{self, Where, STACK_TAG};
use super::resources::{cluster, security_group, EcsTag, KvTag, Spec, KINDS};
use super::stack::{Resource, Stack};

pub use task::{ImageConfig, IMAGE_START};

/// The account and region ARNs are written for, and what apply learnt of images.
#[derive(Debug, Clone)]
pub struct Target {
    pub region: String,
    pub account: String,
    /// The images bosun-deploy built (resource → `REPO@sha256:…`); `render` builds
    /// none and shows [`naming::UNBUILT`] for their digests.
    pub images: BTreeMap<String, String>,
    /// The configs of the prebuilt images (resource → config).
    pub image_configs: BTreeMap<String, ImageConfig>,
    /// The prebuilt images without bosun, which apply adds it to: their images (in
    /// `images`) are the stack's, in its repositories.
    pub bosun_added: BTreeSet<String>,
    /// The complete ARNs of the secrets the tasks read (name → ARN); `render`, which
    /// asks AWS nothing, writes the ARN without the suffix Secrets Manager adds.
    pub secrets: BTreeMap<String, String>,
    /// The region's default network, where the file gives no `network`, or the VPC
    /// of the file's subnets where services have ports (apply and diff look it up;
    /// `render` shows placeholders).
    pub network: Option<StackNetwork>,
    /// Cloud Map, where services have ports: what apply has made of it.
    pub discovery: private_network::Discovery,
}

/// Where the stack's own security group goes: the default VPC and its default
/// subnets (no `network` in the file), or the VPC of the file's subnets (a `network`,
/// and services with ports); the group's id is `None` until apply makes it.
#[derive(Debug, Clone, Default)]
pub struct StackNetwork {
    pub vpc: String,
    pub subnets: Vec<String>,
    pub group: Option<String>,
}

impl Target {
    /// What is known without asking AWS: the account and region, nothing built, no
    /// network looked up (`render`, `policy`, `run --local`).
    pub fn offline(at: &Where) -> Target {
        Target {
            region: at.region.clone(),
            account: at.account.clone(),
            images: Default::default(),
            image_configs: Default::default(),
            bosun_added: Default::default(),
            secrets: Default::default(),
            network: None,
            discovery: Default::default(),
        }
    }

    pub fn at(&self) -> Where {
        Where {
            region: self.region.clone(),
            account: self.account.clone(),
        }
    }

    pub fn arn(&self, service: &str, rest: &str) -> String {
        self.at().arn(service, rest)
    }

    /// Whether `name`'s image is the stack's own (built, or prebuilt with bosun added):
    /// it lives in the stack's repository, pinned by digest.
    pub fn owns_image(&self, name: &str, ctr: &crate::deploy::stack::Container) -> bool {
        ctr.is_built() || self.bosun_added.contains(name)
    }
}

/// The stack rendered: every resource with its dependencies, and what must exist
/// before anything is changed.
pub struct Rendered {
    pub nodes: Vec<Node<Spec>>,
    pub preflight: Preflight,
}

/// What apply checks before its first mutating call.
#[derive(Debug, Default)]
pub struct Preflight {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// Where the file names each subnet and security group, in their order
    /// (`file:line:col (network.subnets.0)`).
    pub subnets_at: Vec<String>,
    pub security_groups_at: Vec<String>,
    /// The capacity providers the services' strategies name (a shared cluster must
    /// have them already).
    pub capacity_providers: Vec<String>,
    /// Secrets Manager secrets the tasks read (name or ARN, and where the file
    /// references it: `file:line:col (path)`).
    pub secrets: Vec<(String, String)>,
    /// The JSON keys of secrets the tasks read (secret, key, where).
    pub secret_keys: Vec<(String, String, String)>,
    /// SSM parameters the tasks read (name or ARN, and where the file references it).
    pub params: Vec<(String, String)>,
    /// The resources that run on the stack's EC2 capacity (its own capacity providers
    /// must go on the cluster, so the cluster must be the stack's).
    pub ec2_resources: Vec<String>,
    /// The public SSM parameters of the ECS-optimized AMIs the launch templates name.
    pub ami_parameters: Vec<String>,
    /// The VPC a private DNS namespace goes into: its DNS attributes must be on.
    pub dns_vpc: Option<String>,
}

impl Rendered {
    /// `render`'s output: the API inputs, grouped by kind.
    pub fn to_json(&self, stack: &Stack, t: &Target) -> Value {
        let mut out = Map::new();
        out.insert("stack".into(), json!(stack.stack));
        out.insert("region".into(), json!(t.region));
        out.insert("account".into(), json!(t.account));
        for n in &self.nodes {
            let list = out
                .entry(n.spec.plural())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = list {
                a.push(n.spec.to_json());
            }
        }
        Value::Object(out)
    }
}

/// A node's id, for others to depend on.
pub type Dep = (&'static str, String);

/// What every component reads: the stack, where it goes, and the names derived from
/// both.
pub struct Cx<'a> {
    pub stack: &'a Stack,
    pub t: &'a Target,
}

impl Cx<'_> {
    pub fn name(&self) -> &str {
        &self.stack.stack
    }

    pub fn family(&self, name: &str) -> String {
        naming::family(&self.stack.stack, name)
    }

    pub fn log_group(&self, name: &str) -> String {
        naming::log_group(&self.stack.stack, name)
    }

    /// An sqs-queue's name (FIFO as the file says).
    pub fn queue_name(&self, name: &str) -> String {
        naming::queue(&self.stack.stack, name, self.stack.is_fifo(name))
    }

    pub fn queue_url(&self, name: &str) -> String {
        self.t.at().queue_url(&self.queue_name(name))
    }

    pub fn queue_arn(&self, name: &str) -> String {
        self.t.at().queue_arn(&self.queue_name(name))
    }

    pub fn role_arn(&self, role: &str) -> String {
        self.t.at().role_arn(&self.stack.stack, role)
    }

    pub fn cluster_arn(&self) -> String {
        self.t.at().cluster_arn(&self.stack.cluster)
    }

    /// The name of an sqs-queue's dead-letter queue, if it has one: the file's
    /// `targetQueue`, or the one the stack makes for it.
    pub fn dead_letter_queue_name(&self, name: &str) -> Option<String> {
        let Some(Resource::SqsQueue(q)) = self.stack.resources.get(name) else {
            return None;
        };
        let d = q.dead_letter_queue.as_ref()?;
        Some(match &d.target_queue {
            Some(other) => self.queue_name(other),
            None => naming::dead_letter_queue(&self.stack.stack, name, q.fifo),
        })
    }

    /// The tasks' network: subnets, security groups, and `ENABLED`/`DISABLED`.
    /// Without a `network` in the file: the default subnets, the stack's own group,
    /// and public IPs (default subnets have no NAT, and tasks must pull their images).
    pub fn awsvpc(&self) -> (Vec<String>, Vec<String>, String) {
        let (subnets, sgs, public) = match &self.stack.network {
            Some(n) => {
                let mut groups = n.security_groups.clone();
                // Beside the file's groups (never changed), the stack's own, whose
                // rules let its tasks reach its services' ports.
                if self.stack.has_ports() {
                    groups.push(self.stack_group());
                }
                (n.subnets.clone(), groups, n.assign_public_ip)
            }
            None => {
                let d = self.t.network.clone().unwrap_or_default();
                let subnets = if d.subnets.is_empty() {
                    vec![DEFAULT_SUBNETS.to_owned()]
                } else {
                    d.subnets
                };
                (subnets, vec![self.stack_group()], true)
            }
        };
        (
            subnets,
            sgs,
            if public { "ENABLED" } else { "DISABLED" }.into(),
        )
    }

    /// A secret's ARN to name it by, and the ARN pattern IAM grants: the complete ARN
    /// where apply read it, an ARN the file gives as it is, else the name's ARN and
    /// `NAME-??????`, that secret alone, where `NAME*` would also be `NAMEadmin-…`
    /// (Secrets Manager User Guide, "Resources: ARN with wildcards in IAM policies").
    pub fn secret_arns(&self, secret: &str) -> (String, String) {
        match self.t.secrets.get(secret) {
            Some(arn) => (arn.clone(), arn.clone()),
            None if crate::deploy::stack::directive::is_arn(secret) => {
                (secret.to_owned(), secret.to_owned())
            }
            None => {
                let base = self.t.arn("secretsmanager", &format!("secret:{secret}"));
                (base.clone(), format!("{base}-??????"))
            }
        }
    }

    /// An SSM parameter's ARN, by its name or ARN: `parameter` then the name, whose
    /// leading `/` is the ARN's separator (Systems Manager User Guide, "Working with
    /// parameter hierarchies").
    pub fn param_arn(&self, param: &str) -> String {
        if crate::deploy::stack::directive::is_arn(param) {
            param.to_owned()
        } else {
            self.t.arn(
                "ssm",
                &format!("parameter/{}", param.trim_start_matches('/')),
            )
        }
    }

    /// The stack's own security group's id (a placeholder until apply makes it).
    pub fn stack_group(&self) -> String {
        self.t
            .network
            .as_ref()
            .and_then(|n| n.group.clone())
            .unwrap_or_else(|| security_group::PENDING.to_owned())
    }

    /// The stack's tags and [`STACK_TAG`], sorted.
    pub fn tag_pairs(&self) -> Vec<(String, String)> {
        let mut t = vec![(STACK_TAG.to_owned(), self.stack.stack.clone())];
        if let Some(stage) = &self.stack.stage {
            t.push((naming::STAGE_TAG.to_owned(), stage.clone()));
        }
        t.extend(self.stack.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        t.sort();
        t
    }

    pub fn tags_ecs(&self) -> Vec<EcsTag> {
        self.tag_pairs()
            .into_iter()
            .map(|(key, value)| EcsTag { key, value })
            .collect()
    }

    pub fn tags_kv(&self) -> Vec<KvTag> {
        self.tag_pairs()
            .into_iter()
            .map(|(key, value)| KvTag { key, value })
            .collect()
    }

    pub fn tags_map(&self) -> BTreeMap<String, String> {
        self.tag_pairs().into_iter().collect()
    }
}

/// Where a resource's tasks run, as its service or schedule runs them: the stack's
/// network and the resource's capacity (Fargate, Fargate Spot, or its EC2 capacity
/// provider). `run` starts its tasks here.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub assign_public_ip: String,
    /// `FARGATE`, or none where a capacity provider strategy stands.
    pub launch_type: Option<String>,
    /// (capacity provider, weight, base).
    pub strategy: Vec<(String, i32, Option<i32>)>,
}

/// The placement of a worker service's or scheduled job's tasks (none for a queue).
pub fn placement(stack: &Stack, t: &Target, name: &str) -> Option<Placement> {
    let cx = Cx { stack, t };
    let res = stack.resources.get(name)?;
    let ctr = res.container()?;
    let (subnets, security_groups, assign_public_ip) = cx.awsvpc();
    let strategy: Vec<(String, i32, Option<i32>)> = match res {
        Resource::WorkerService(s) if s.spot => worker_service::spot_strategy(s)
            .into_iter()
            .map(|i| (i.capacity_provider, i.weight, i.base))
            .collect(),
        Resource::ScheduledJob(j) if j.spot => vec![("FARGATE_SPOT".to_owned(), 1, None)],
        _ if ctr.resources.instance_types.is_some() => vec![(cx.family(name), 1, None)],
        _ => Vec::new(),
    };
    Some(Placement {
        subnets,
        security_groups,
        assign_public_ip,
        launch_type: strategy.is_empty().then(|| "FARGATE".to_owned()),
        strategy,
    })
}

/// The nodes being made, and what the components gather for preflight and for the
/// roles every task shares.
#[derive(Default)]
pub struct Builder {
    nodes: Vec<Node<Spec>>,
    pub preflight: Preflight,
    /// Secret ARN patterns the execution role reads.
    pub secret_arns: Vec<String>,
    /// The stack's schedule group, once a schedule needs it.
    pub schedule_group: Option<Dep>,
}

impl Builder {
    /// Add a resource; returns its id for others to depend on.
    pub fn add(&mut self, spec: impl Into<Spec>, deps: &[Dep]) -> Dep {
        let spec = spec.into();
        let id = (spec.kind(), spec.name());
        self.nodes.push(Node {
            spec,
            deps: deps.to_vec(),
        });
        id
    }
}

/// Everything `render` prints and `apply` reconciles.
pub fn render(stack: &Stack, t: &Target) -> Rendered {
    let cx = Cx { stack, t };
    let mut b = Builder::default();
    let has_tasks = stack.resources.values().any(|r| r.container().is_some());
    let (cluster, network) = match has_tasks.then(|| cluster_node(&cx, &mut b)) {
        Some((c, n)) => (Some(c), n),
        None => (None, None),
    };
    let queues = queue::add_all(&cx, &mut b);
    bucket::add_all(&cx, &mut b);
    forwarding::add_all(&cx, &mut b);
    let registries = private_network::add(&cx, &mut b, network.as_ref());
    let mut jobs = Vec::new();
    for (name, res) in &stack.resources {
        let Some(ctr) = res.container() else { continue };
        let task_definition = task::add(&cx, &mut b, name, res, ctr, &queues);
        let mut deps = vec![task_definition];
        deps.extend(cluster.clone());
        deps.extend(network.clone());
        if let Some(types) = &ctr.resources.instance_types {
            let most = match res {
                Resource::WorkerService(s) => s.bounds().1,
                Resource::ScheduledJob(j) => j.task_count.unwrap_or(1),
                Resource::SqsQueue(_) | Resource::Bucket(_) => 1,
            };
            let cluster = cluster.iter().chain(&network).cloned().collect::<Vec<_>>();
            deps.extend(ec2_capacity::add(
                &cx, &mut b, name, ctr, types, most, &cluster,
            ));
        }
        match res {
            Resource::WorkerService(s) => {
                deps.extend(registries.get(name).cloned());
                worker_service::add(&cx, &mut b, name, s, &deps)
            }
            Resource::ScheduledJob(j) => jobs.push((name.as_str(), j.as_ref(), deps)),
            Resource::SqsQueue(_) | Resource::Bucket(_) => {}
        }
    }
    if let Some(cluster) = &cluster {
        ec2_capacity::on_cluster(&cx, &mut b, cluster);
        ec2_capacity::refreshes(&cx, &mut b);
        roles::execution(&cx, &mut b);
    }
    scheduled_job::add_all(&cx, &mut b, &jobs);
    let mut nodes = b.nodes;
    // For people reading `render` and the plan: kinds in the registry's order, then
    // the file's. What runs first is decided by the dependencies, never by this.
    nodes.sort_by_key(|n| KINDS.iter().position(|k| *k == n.spec.kind()));
    Rendered {
        nodes,
        preflight: b.preflight,
    }
}

/// What `render` (which asks AWS nothing) shows for the default VPC's subnets.
pub const DEFAULT_SUBNETS: &str = "(the default VPC's default subnets)";

/// The stack's cluster, with Fargate's capacity providers, and its own security group
/// where it runs in the default VPC; and the network and the spot services'
/// providers preflight checks.
fn cluster_node(cx: &Cx<'_>, b: &mut Builder) -> (Dep, Option<Dep>) {
    let stack = cx.stack;
    let mut network = None;
    if let Some(n) = &stack.network {
        b.preflight.subnets = n.subnets.clone();
        b.preflight.security_groups = n.security_groups.clone();
        b.preflight.subnets_at = (0..n.subnets.len())
            .map(|i| stack.locate(&format!("/network/subnets/{i}")))
            .collect();
        b.preflight.security_groups_at = (0..n.security_groups.len())
            .map(|i| stack.locate(&format!("/network/securityGroups/{i}")))
            .collect();
    }
    // The stack's own group: where the tasks run in the default VPC, and beside the
    // file's groups where services take connections.
    if stack.network.is_none() || stack.has_ports() {
        let vpc = match (&cx.t.network, &stack.network) {
            (Some(d), _) => d.vpc.clone(),
            (None, None) => "(the default VPC)".to_owned(),
            (None, Some(_)) => "(the VPC of the file's subnets)".to_owned(),
        };
        network = Some(b.add(
            security_group::SecurityGroup {
                group_name: naming::security_group(cx.name()),
                description: format!(
                    "bosun-deploy stack {}: its tasks (inbound only from its own tasks, on its services' ports)",
                    cx.name()
                ),
                vpc_id: vpc,
                tags: cx.tags_map(),
            },
            &[],
        ));
    }
    let mut providers: Vec<String> = stack
        .resources
        .values()
        .filter_map(|r| match r {
            Resource::WorkerService(s) if s.spot => Some(
                worker_service::spot_strategy(s)
                    .into_iter()
                    .map(|i| i.capacity_provider)
                    .collect::<Vec<_>>(),
            ),
            Resource::ScheduledJob(j) if j.spot => Some(vec!["FARGATE_SPOT".to_owned()]),
            _ => None,
        })
        .flatten()
        .collect();
    providers.sort();
    providers.dedup();
    b.preflight.capacity_providers = providers;
    let cluster = b.add(
        cluster::Cluster {
            cluster_name: stack.cluster.clone(),
            capacity_providers: cluster::FARGATE_PROVIDERS.map(String::from).to_vec(),
            settings: vec![cluster::Setting {
                name: "containerInsights".into(),
                value: "enabled".into(),
            }],
            tags: cx.tags_ecs(),
        },
        &[],
    );
    (cluster, network)
}
