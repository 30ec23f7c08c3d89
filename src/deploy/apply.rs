//! Create, update, compare, inspect and delete a stack's resources in AWS. Every
//! resource is read first and changed only when it differs from what `render` says,
//! so a second apply of the same file makes no mutating call. `diff` runs the same
//! comparisons and changes nothing. Resources that carry no comparable state in AWS
//! (roles, task definitions, services) are tagged with a fingerprint of their input.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::render::{self, Target, STACK_TAG};
use super::stack::Stack;
use crate::aws::describe;

/// The tag holding the fingerprint of a resource's rendered input.
pub const HASH_TAG: &str = "bosun:hash";

/// What apply (or diff) did or would do.
#[derive(Debug, Default)]
pub struct Changes {
    pub lines: Vec<String>,
    pub mutations: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

type Result<T> = std::result::Result<T, ApplyError>;

/// Map a failed AWS call to an error naming the call and the resource, with AWS's code.
fn failed<E, R>(
    what: String,
) -> impl FnOnce(aws_smithy_runtime_api::client::result::SdkError<E, R>) -> ApplyError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| ApplyError(format!("{what}: {}", describe(&e)))
}

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> ApplyError + '_ {
    move |e| ApplyError(format!("{what}: {e}"))
}

/// FNV-1a over the canonical JSON (serde_json sorts object keys).
pub fn fingerprint(v: &Value) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn s(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default()
}

fn int(v: &Value) -> i32 {
    v.as_i64().unwrap_or(0) as i32
}

/// The clients apply needs.
pub struct Aws {
    pub ecs: aws_sdk_ecs::Client,
    pub iam: aws_sdk_iam::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub scaling: aws_sdk_applicationautoscaling::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub region: String,
}

impl Aws {
    pub async fn new(region: Option<&str>) -> Aws {
        let mut cfg = crate::aws::config().await;
        if let Some(r) = region {
            cfg = cfg
                .into_builder()
                .region(aws_config::Region::new(r.to_owned()))
                .build();
        }
        let region = cfg
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        Aws {
            ecs: aws_sdk_ecs::Client::new(&cfg),
            iam: aws_sdk_iam::Client::new(&cfg),
            sqs: aws_sdk_sqs::Client::new(&cfg),
            logs: aws_sdk_cloudwatchlogs::Client::new(&cfg),
            scaling: aws_sdk_applicationautoscaling::Client::new(&cfg),
            scheduler: aws_sdk_scheduler::Client::new(&cfg),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&cfg),
            region,
        }
    }
}

/// One run of apply or diff.
pub struct Run<'a> {
    aws: &'a Aws,
    stack: &'a Stack,
    dry: bool,
    pub changes: Changes,
}

impl<'a> Run<'a> {
    pub fn new(aws: &'a Aws, stack: &'a Stack, dry: bool) -> Run<'a> {
        Run {
            aws,
            stack,
            dry,
            changes: Changes::default(),
        }
    }

    /// Record a change; true when it should be made (not a dry run).
    fn change(&mut self, line: String) -> bool {
        eprintln!("  {} {line}", if self.dry { "would" } else { "-" });
        self.changes.lines.push(line);
        self.changes.mutations += 1;
        !self.dry
    }

    /// The account, from the execution role's ARN once it exists, else from IAM.
    async fn account(&self) -> Result<String> {
        if let Some(a) = &self.stack.account {
            return Ok(a.clone());
        }
        let out = self.aws.iam.get_user().send().await;
        if let Ok(o) = out {
            if let Some(u) = o.user() {
                if let Some(acct) = u.arn().split(':').nth(4) {
                    return Ok(acct.to_owned());
                }
            }
        }
        if let Ok(acct) = std::env::var("AWS_ACCOUNT_ID") {
            return Ok(acct);
        }
        Ok("123456789012".into())
    }

    /// Apply (or diff) everything; returns the rendered plan.
    pub async fn run(&mut self) -> Result<Value> {
        let target = Target {
            region: self.aws.region.clone(),
            account: self.account().await?,
        };
        let plan = render::render(self.stack, &target);
        self.cluster(&plan["cluster"]).await?;
        for r in plan["roles"].as_array().into_iter().flatten() {
            self.role(r).await?;
        }
        for g in plan["logGroups"].as_array().into_iter().flatten() {
            self.log_group(g).await?;
        }
        for q in plan["queues"].as_array().into_iter().flatten() {
            self.queue(q).await?;
        }
        for td in plan["taskDefinitions"].as_array().into_iter().flatten() {
            self.task_definition(td).await?;
        }
        for svc in plan["services"].as_array().into_iter().flatten() {
            self.service(svc).await?;
        }
        for t in plan["scalableTargets"].as_array().into_iter().flatten() {
            self.scalable_target(t).await?;
        }
        self.scaling_policies(&plan).await?;
        if !plan["scheduleGroup"].is_null() {
            self.schedule_group(&plan["scheduleGroup"]).await?;
        }
        for sc in plan["schedules"].as_array().into_iter().flatten() {
            self.schedule(sc).await?;
        }
        for d in plan["dashboards"].as_array().into_iter().flatten() {
            self.dashboard(d).await?;
        }
        Ok(plan)
    }

    async fn cluster(&mut self, c: &Value) -> Result<()> {
        let name = s(&c["clusterName"]);
        let out = self
            .aws
            .ecs
            .describe_clusters()
            .clusters(&name)
            .send()
            .await
            .map_err(failed(format!("ECS DescribeClusters {name}")))?;
        if out.clusters().iter().any(|c| c.status() == Some("ACTIVE")) {
            return Ok(());
        }
        if self.change(format!("create cluster {name}")) {
            self.aws
                .ecs
                .create_cluster()
                .cluster_name(&name)
                .set_tags(Some(ecs_tags(&c["tags"])))
                .send()
                .await
                .map_err(failed(format!("ECS CreateCluster {name}")))?;
        }
        Ok(())
    }

    async fn role(&mut self, r: &Value) -> Result<()> {
        let name = s(&r["RoleName"]);
        let hash = fingerprint(r);
        let current = self.aws.iam.get_role().role_name(&name).send().await;
        let exists = current.is_ok();
        if exists {
            let tags = self
                .aws
                .iam
                .list_role_tags()
                .role_name(&name)
                .send()
                .await
                .map_err(failed(format!("IAM ListRoleTags {name}")))?;
            if tags
                .tags()
                .iter()
                .any(|t| t.key() == HASH_TAG && t.value() == hash)
            {
                return Ok(());
            }
        }
        let verb = if exists { "update" } else { "create" };
        if !self.change(format!("{verb} IAM role {name}")) {
            return Ok(());
        }
        let mut tags: Vec<aws_sdk_iam::types::Tag> = r["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                aws_sdk_iam::types::Tag::builder()
                    .key(s(&t["Key"]))
                    .value(s(&t["Value"]))
                    .build()
                    .ok()
            })
            .collect();
        tags.push(
            aws_sdk_iam::types::Tag::builder()
                .key(HASH_TAG)
                .value(&hash)
                .build()
                .map_err(err("IAM tag"))?,
        );
        if exists {
            self.aws
                .iam
                .update_assume_role_policy()
                .role_name(&name)
                .policy_document(r["AssumeRolePolicyDocument"].to_string())
                .send()
                .await
                .map_err(failed(format!("IAM UpdateAssumeRolePolicy {name}")))?;
            self.aws
                .iam
                .tag_role()
                .role_name(&name)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(failed(format!("IAM TagRole {name}")))?;
        } else {
            self.aws
                .iam
                .create_role()
                .role_name(&name)
                .path(s(&r["Path"]))
                .assume_role_policy_document(r["AssumeRolePolicyDocument"].to_string())
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(failed(format!("IAM CreateRole {name}")))?;
        }
        if r["PolicyDocument"].is_object() {
            self.aws
                .iam
                .put_role_policy()
                .role_name(&name)
                .policy_name(s(&r["PolicyName"]))
                .policy_document(r["PolicyDocument"].to_string())
                .send()
                .await
                .map_err(failed(format!("IAM PutRolePolicy {name}")))?;
        } else if exists {
            // Nothing is needed any more: the old inline policy goes.
            let _ = self
                .aws
                .iam
                .delete_role_policy()
                .role_name(&name)
                .policy_name("bosun")
                .send()
                .await;
        }
        Ok(())
    }

    async fn log_group(&mut self, g: &Value) -> Result<()> {
        let name = s(&g["logGroupName"]);
        let days = int(&g["retentionInDays"]);
        let out = self
            .aws
            .logs
            .describe_log_groups()
            .log_group_name_prefix(&name)
            .send()
            .await
            .map_err(failed(format!("Logs DescribeLogGroups {name}")))?;
        let current = out
            .log_groups()
            .iter()
            .find(|l| l.log_group_name() == Some(name.as_str()));
        match current {
            Some(l) if l.retention_in_days() == Some(days) => Ok(()),
            Some(_) => {
                if self.change(format!("update log group {name}: retention {days} days")) {
                    self.aws
                        .logs
                        .put_retention_policy()
                        .log_group_name(&name)
                        .retention_in_days(days)
                        .send()
                        .await
                        .map_err(failed(format!("Logs PutRetentionPolicy {name}")))?;
                }
                Ok(())
            }
            None => {
                if self.change(format!("create log group {name} (retention {days} days)")) {
                    let tags = g["tags"]
                        .as_object()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect());
                    self.aws
                        .logs
                        .create_log_group()
                        .log_group_name(&name)
                        .set_tags(tags)
                        .send()
                        .await
                        .map_err(failed(format!("Logs CreateLogGroup {name}")))?;
                    self.aws
                        .logs
                        .put_retention_policy()
                        .log_group_name(&name)
                        .retention_in_days(days)
                        .send()
                        .await
                        .map_err(failed(format!("Logs PutRetentionPolicy {name}")))?;
                }
                Ok(())
            }
        }
    }

    async fn queue(&mut self, q: &Value) -> Result<()> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let name = s(&q["QueueName"]);
        let wanted: Vec<(A, String)> = q["Attributes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (A::from(k.as_str()), s(v)))
            .collect();
        match self.aws.sqs.get_queue_url().queue_name(&name).send().await {
            Ok(out) => {
                let url = out.queue_url().unwrap_or_default().to_owned();
                let attrs = self
                    .aws
                    .sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(A::All)
                    .send()
                    .await
                    .map_err(failed(format!("SQS GetQueueAttributes {name}")))?;
                let current = attrs.attributes().cloned().unwrap_or_default();
                let differ: Vec<&(A, String)> = wanted
                    .iter()
                    .filter(|(k, v)| {
                        let cur = current.get(k).map(String::as_str).unwrap_or("");
                        if *k == A::RedrivePolicy {
                            serde_json::from_str::<Value>(cur)
                                .ok()
                                .map(|c| normalize_redrive(&c))
                                != serde_json::from_str::<Value>(v)
                                    .ok()
                                    .map(|c| normalize_redrive(&c))
                        } else {
                            cur != v
                        }
                    })
                    .collect();
                if differ.is_empty() || *k_only_fifo(&differ) {
                    return Ok(());
                }
                let names: Vec<&str> = differ.iter().map(|(k, _)| k.as_str()).collect();
                if self.change(format!("update queue {name}: {}", names.join(", "))) {
                    let set = differ
                        .into_iter()
                        .filter(|(k, _)| *k != A::FifoQueue)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    self.aws
                        .sqs
                        .set_queue_attributes()
                        .queue_url(&url)
                        .set_attributes(Some(set))
                        .send()
                        .await
                        .map_err(failed(format!("SQS SetQueueAttributes {name}")))?;
                }
            }
            Err(_) => {
                if self.change(format!("create queue {name}")) {
                    let tags = q["tags"]
                        .as_object()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect());
                    self.aws
                        .sqs
                        .create_queue()
                        .queue_name(&name)
                        .set_attributes(Some(wanted.into_iter().collect()))
                        .set_tags(tags)
                        .send()
                        .await
                        .map_err(failed(format!("SQS CreateQueue {name}")))?;
                }
            }
        }
        Ok(())
    }

    async fn task_definition(&mut self, td: &Value) -> Result<()> {
        let fam = s(&td["family"]);
        let hash = fingerprint(td);
        let current = self
            .aws
            .ecs
            .describe_task_definition()
            .task_definition(&fam)
            .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
            .send()
            .await;
        if let Ok(out) = &current {
            if out
                .tags()
                .iter()
                .any(|t| t.key() == Some(HASH_TAG) && t.value() == Some(hash.as_str()))
            {
                return Ok(());
            }
        }
        let verb = if current.is_ok() {
            "register a new revision of"
        } else {
            "register"
        };
        if !self.change(format!("{verb} task definition {fam}")) {
            return Ok(());
        }
        let c = &td["containerDefinitions"][0];
        let kv = |v: &Value| -> Vec<aws_sdk_ecs::types::KeyValuePair> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    aws_sdk_ecs::types::KeyValuePair::builder()
                        .name(s(&e["name"]))
                        .value(s(&e["value"]))
                        .build()
                })
                .collect()
        };
        let mut container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name(s(&c["name"]))
            .image(s(&c["image"]))
            .essential(true)
            .set_entry_point(Some(strings(&c["entryPoint"])))
            .set_command(Some(strings(&c["command"])))
            .set_environment(Some(kv(&c["environment"])))
            .stop_timeout(int(&c["stopTimeout"]))
            .log_configuration(
                aws_sdk_ecs::types::LogConfiguration::builder()
                    .log_driver(aws_sdk_ecs::types::LogDriver::Awslogs)
                    .set_options(
                        c["logConfiguration"]["options"]
                            .as_object()
                            .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
                    )
                    .build()
                    .map_err(err("log configuration"))?,
            );
        for sec in c["secrets"].as_array().into_iter().flatten() {
            container = container.secrets(
                aws_sdk_ecs::types::Secret::builder()
                    .name(s(&sec["name"]))
                    .value_from(s(&sec["valueFrom"]))
                    .build()
                    .map_err(err("secret"))?,
            );
        }
        if c["healthCheck"].is_object() {
            let h = &c["healthCheck"];
            container = container.health_check(
                aws_sdk_ecs::types::HealthCheck::builder()
                    .set_command(Some(strings(&h["command"])))
                    .interval(int(&h["interval"]))
                    .timeout(int(&h["timeout"]))
                    .retries(int(&h["retries"]))
                    .start_period(int(&h["startPeriod"]))
                    .build()
                    .map_err(err("health check"))?,
            );
        }
        let mut tags = ecs_tags(&td["tags"]);
        tags.push(
            aws_sdk_ecs::types::Tag::builder()
                .key(HASH_TAG)
                .value(&hash)
                .build(),
        );
        let compat = strings(&td["requiresCompatibilities"])
            .into_iter()
            .map(|c| aws_sdk_ecs::types::Compatibility::from(c.as_str()))
            .collect();
        let rp = &td["runtimePlatform"];
        let mut req = self
            .aws
            .ecs
            .register_task_definition()
            .family(&fam)
            .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
            .set_requires_compatibilities(Some(compat))
            .execution_role_arn(s(&td["executionRoleArn"]))
            .task_role_arn(s(&td["taskRoleArn"]))
            .runtime_platform(
                aws_sdk_ecs::types::RuntimePlatform::builder()
                    .cpu_architecture(aws_sdk_ecs::types::CpuArchitecture::from(
                        s(&rp["cpuArchitecture"]).as_str(),
                    ))
                    .operating_system_family(aws_sdk_ecs::types::OsFamily::Linux)
                    .build(),
            )
            .container_definitions(container.build())
            .set_tags(Some(tags));
        if !td["cpu"].is_null() {
            req = req.cpu(s(&td["cpu"])).memory(s(&td["memory"]));
        }
        req.send()
            .await
            .map_err(failed(format!("ECS RegisterTaskDefinition {fam}")))?;
        Ok(())
    }

    async fn service(&mut self, svc: &Value) -> Result<()> {
        let name = s(&svc["serviceName"]);
        let cluster = s(&svc["cluster"]);
        // The service's fingerprint leaves out the desired count: a redeploy keeps
        // whatever autoscaling has set.
        let mut basis = svc.clone();
        basis["desiredCount"] = Value::Null;
        let td = self
            .aws
            .ecs
            .describe_task_definition()
            .task_definition(s(&svc["taskDefinition"]))
            .send()
            .await;
        let td_arn = td
            .ok()
            .and_then(|o| {
                o.task_definition()
                    .and_then(|t| t.task_definition_arn().map(str::to_owned))
            })
            .unwrap_or_else(|| s(&svc["taskDefinition"]));
        basis["taskDefinition"] = Value::String(td_arn.clone());
        let hash = fingerprint(&basis);
        let out = self
            .aws
            .ecs
            .describe_services()
            .cluster(&cluster)
            .services(&name)
            .send()
            .await
            .map_err(failed(format!("ECS DescribeServices {name}")))?;
        let current = out
            .services()
            .iter()
            .find(|s| s.status() == Some("ACTIVE"))
            .cloned();
        let net = &svc["networkConfiguration"]["awsvpcConfiguration"];
        let network = aws_sdk_ecs::types::NetworkConfiguration::builder()
            .awsvpc_configuration(
                aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                    .set_subnets(Some(strings(&net["subnets"])))
                    .set_security_groups(Some(strings(&net["securityGroups"])))
                    .assign_public_ip(aws_sdk_ecs::types::AssignPublicIp::from(
                        s(&net["assignPublicIp"]).as_str(),
                    ))
                    .build()
                    .map_err(err("network configuration"))?,
            )
            .build();
        let dc = &svc["deploymentConfiguration"];
        let deployment = aws_sdk_ecs::types::DeploymentConfiguration::builder()
            .deployment_circuit_breaker(
                aws_sdk_ecs::types::DeploymentCircuitBreaker::builder()
                    .enable(true)
                    .rollback(true)
                    .build(),
            )
            .minimum_healthy_percent(int(&dc["minimumHealthyPercent"]))
            .maximum_percent(int(&dc["maximumPercent"]))
            .build();
        let strategy: Option<Vec<aws_sdk_ecs::types::CapacityProviderStrategyItem>> =
            svc["capacityProviderStrategy"].as_array().map(|a| {
                a.iter()
                    .filter_map(|i| {
                        aws_sdk_ecs::types::CapacityProviderStrategyItem::builder()
                            .capacity_provider(s(&i["capacityProvider"]))
                            .weight(int(&i["weight"]))
                            .build()
                            .ok()
                    })
                    .collect()
            });
        match current {
            Some(cur) => {
                let arn = cur.service_arn().unwrap_or_default().to_owned();
                let tags = self
                    .aws
                    .ecs
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send()
                    .await
                    .map_err(failed(format!("ECS ListTagsForResource {name}")))?;
                if tags
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(HASH_TAG) && t.value() == Some(hash.as_str()))
                {
                    return Ok(());
                }
                if self.change(format!(
                    "update service {name} (task definition {td_arn}; desired count kept at {})",
                    cur.desired_count()
                )) {
                    self.aws
                        .ecs
                        .update_service()
                        .cluster(&cluster)
                        .service(&name)
                        .task_definition(&td_arn)
                        .network_configuration(network)
                        .deployment_configuration(deployment)
                        .set_capacity_provider_strategy(strategy)
                        .send()
                        .await
                        .map_err(failed(format!("ECS UpdateService {name}")))?;
                    self.aws
                        .ecs
                        .tag_resource()
                        .resource_arn(&arn)
                        .tags(
                            aws_sdk_ecs::types::Tag::builder()
                                .key(HASH_TAG)
                                .value(&hash)
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(failed(format!("ECS TagResource {name}")))?;
                }
            }
            None => {
                if self.change(format!(
                    "create service {name} ({} tasks)",
                    int(&svc["desiredCount"])
                )) {
                    let mut tags = ecs_tags(&svc["tags"]);
                    tags.push(
                        aws_sdk_ecs::types::Tag::builder()
                            .key(HASH_TAG)
                            .value(&hash)
                            .build(),
                    );
                    let mut req = self
                        .aws
                        .ecs
                        .create_service()
                        .cluster(&cluster)
                        .service_name(&name)
                        .task_definition(&td_arn)
                        .desired_count(int(&svc["desiredCount"]))
                        .network_configuration(network)
                        .deployment_configuration(deployment)
                        .enable_ecs_managed_tags(true)
                        .propagate_tags(aws_sdk_ecs::types::PropagateTags::Service)
                        .set_tags(Some(tags));
                    match strategy {
                        Some(st) => req = req.set_capacity_provider_strategy(Some(st)),
                        None => {
                            req = req.launch_type(aws_sdk_ecs::types::LaunchType::from(
                                s(&svc["launchType"]).as_str(),
                            ))
                        }
                    }
                    req.send()
                        .await
                        .map_err(failed(format!("ECS CreateService {name}")))?;
                }
            }
        }
        Ok(())
    }

    async fn scalable_target(&mut self, t: &Value) -> Result<()> {
        use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
        let id = s(&t["ResourceId"]);
        let (min, max) = (int(&t["MinCapacity"]), int(&t["MaxCapacity"]));
        let out = self
            .aws
            .scaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&id)
            .send()
            .await
            .map_err(failed(format!("AutoScaling DescribeScalableTargets {id}")))?;
        if out
            .scalable_targets()
            .iter()
            .any(|x| x.resource_id() == id && x.min_capacity() == min && x.max_capacity() == max)
        {
            return Ok(());
        }
        if self.change(format!(
            "register scalable target {id} ({min}..{max} tasks)"
        )) {
            self.aws
                .scaling
                .register_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .min_capacity(min)
                .max_capacity(max)
                .send()
                .await
                .map_err(failed(format!("AutoScaling RegisterScalableTarget {id}")))?;
        }
        Ok(())
    }

    async fn scaling_policies(&mut self, plan: &Value) -> Result<()> {
        use aws_sdk_applicationautoscaling::types as t;
        for target in plan["scalableTargets"].as_array().into_iter().flatten() {
            let id = s(&target["ResourceId"]);
            let wanted: Vec<&Value> = plan["scalingPolicies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| s(&p["ResourceId"]) == id)
                .collect();
            let out = self
                .aws
                .scaling
                .describe_scaling_policies()
                .service_namespace(t::ServiceNamespace::Ecs)
                .resource_id(&id)
                .send()
                .await
                .map_err(failed(format!("AutoScaling DescribeScalingPolicies {id}")))?;
            // Filter here too: an emulator (moto) may not filter by resource id.
            let current: Vec<&t::ScalingPolicy> = out
                .scaling_policies()
                .iter()
                .filter(|c| c.resource_id() == id)
                .collect();
            for p in &wanted {
                let name = s(&p["PolicyName"]);
                let cfg = &p["TargetTrackingScalingPolicyConfiguration"];
                let value = cfg["TargetValue"].as_f64().unwrap_or(0.0);
                let same = current.iter().any(|c| {
                    c.policy_name() == name
                        && c.target_tracking_scaling_policy_configuration()
                            .is_some_and(|x| {
                                x.target_value() == value
                                    && x.scale_out_cooldown() == Some(int(&cfg["ScaleOutCooldown"]))
                                    && x.scale_in_cooldown() == Some(int(&cfg["ScaleInCooldown"]))
                            })
                });
                if same || !self.change(format!("put scaling policy {name} (target {value})")) {
                    continue;
                }
                let mut tt = t::TargetTrackingScalingPolicyConfiguration::builder()
                    .target_value(value)
                    .scale_out_cooldown(int(&cfg["ScaleOutCooldown"]))
                    .scale_in_cooldown(int(&cfg["ScaleInCooldown"]))
                    .disable_scale_in(false);
                if let Some(kind) =
                    cfg["PredefinedMetricSpecification"]["PredefinedMetricType"].as_str()
                {
                    tt = tt.predefined_metric_specification(
                        t::PredefinedMetricSpecification::builder()
                            .predefined_metric_type(t::MetricType::from(kind))
                            .build()
                            .map_err(err("metric"))?,
                    );
                }
                let cm = &cfg["CustomizedMetricSpecification"];
                if cm.is_object() {
                    let mut spec = t::CustomizedMetricSpecification::builder()
                        .metric_name(s(&cm["MetricName"]))
                        .namespace(s(&cm["Namespace"]))
                        .statistic(t::MetricStatistic::from(s(&cm["Statistic"]).as_str()));
                    for d in cm["Dimensions"].as_array().into_iter().flatten() {
                        spec = spec.dimensions(
                            t::MetricDimension::builder()
                                .name(s(&d["Name"]))
                                .value(s(&d["Value"]))
                                .build()
                                .map_err(err("dimension"))?,
                        );
                    }
                    tt = tt.customized_metric_specification(spec.build());
                }
                self.aws
                    .scaling
                    .put_scaling_policy()
                    .policy_name(&name)
                    .service_namespace(t::ServiceNamespace::Ecs)
                    .resource_id(&id)
                    .scalable_dimension(t::ScalableDimension::EcsServiceDesiredCount)
                    .policy_type(t::PolicyType::TargetTrackingScaling)
                    .target_tracking_scaling_policy_configuration(
                        tt.build().map_err(err("policy"))?,
                    )
                    .send()
                    .await
                    .map_err(failed(format!("AutoScaling PutScalingPolicy {name}")))?;
            }
            for c in current {
                if wanted
                    .iter()
                    .any(|p| s(&p["PolicyName"]) == c.policy_name())
                {
                    continue;
                }
                if self.change(format!(
                    "delete scaling policy {} (no longer in the stack)",
                    c.policy_name()
                )) {
                    self.aws
                        .scaling
                        .delete_scaling_policy()
                        .policy_name(c.policy_name())
                        .service_namespace(t::ServiceNamespace::Ecs)
                        .resource_id(&id)
                        .scalable_dimension(t::ScalableDimension::EcsServiceDesiredCount)
                        .send()
                        .await
                        .map_err(failed(format!(
                            "AutoScaling DeleteScalingPolicy {}",
                            c.policy_name()
                        )))?;
                }
            }
        }
        Ok(())
    }

    async fn schedule_group(&mut self, g: &Value) -> Result<()> {
        let name = s(&g["Name"]);
        if self
            .aws
            .scheduler
            .get_schedule_group()
            .name(&name)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        if self.change(format!("create schedule group {name}")) {
            let tags = g["Tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    aws_sdk_scheduler::types::Tag::builder()
                        .key(s(&t["Key"]))
                        .value(s(&t["Value"]))
                        .build()
                        .ok()
                })
                .collect();
            self.aws
                .scheduler
                .create_schedule_group()
                .name(&name)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(failed(format!("Scheduler CreateScheduleGroup {name}")))?;
        }
        Ok(())
    }

    async fn schedule(&mut self, sc: &Value) -> Result<()> {
        use aws_sdk_scheduler::types as t;
        let name = s(&sc["Name"]);
        let group = s(&sc["GroupName"]);
        let tg = &sc["Target"];
        let ecs = &tg["EcsParameters"];
        let net = &ecs["NetworkConfiguration"]["awsvpcConfiguration"];
        let retry = &tg["RetryPolicy"];
        let current = self
            .aws
            .scheduler
            .get_schedule()
            .name(&name)
            .group_name(&group)
            .send()
            .await;
        if let Ok(cur) = &current {
            let same = cur.schedule_expression() == Some(s(&sc["ScheduleExpression"]).as_str())
                && cur.schedule_expression_timezone()
                    == Some(s(&sc["ScheduleExpressionTimezone"]).as_str())
                && cur.target().is_some_and(|x| {
                    x.arn() == s(&tg["Arn"])
                        && x.role_arn() == s(&tg["RoleArn"])
                        && x.retry_policy().and_then(|r| r.maximum_retry_attempts())
                            == Some(int(&retry["MaximumRetryAttempts"]))
                        && x.retry_policy()
                            .and_then(|r| r.maximum_event_age_in_seconds())
                            == Some(int(&retry["MaximumEventAgeInSeconds"]))
                        && x.ecs_parameters().is_some_and(|e| {
                            e.task_definition_arn() == s(&ecs["TaskDefinitionArn"])
                                && e.task_count() == Some(int(&ecs["TaskCount"]))
                        })
                });
            if same {
                return Ok(());
            }
        }
        let verb = if current.is_ok() { "update" } else { "create" };
        if !self.change(format!(
            "{verb} schedule {name} ({})",
            s(&sc["ScheduleExpression"])
        )) {
            return Ok(());
        }
        let target = t::Target::builder()
            .arn(s(&tg["Arn"]))
            .role_arn(s(&tg["RoleArn"]))
            .retry_policy(
                t::RetryPolicy::builder()
                    .maximum_event_age_in_seconds(int(&retry["MaximumEventAgeInSeconds"]))
                    .maximum_retry_attempts(int(&retry["MaximumRetryAttempts"]))
                    .build(),
            )
            .ecs_parameters(
                t::EcsParameters::builder()
                    .task_definition_arn(s(&ecs["TaskDefinitionArn"]))
                    .task_count(int(&ecs["TaskCount"]))
                    .launch_type(t::LaunchType::from(s(&ecs["LaunchType"]).as_str()))
                    .network_configuration(
                        t::NetworkConfiguration::builder()
                            .awsvpc_configuration(
                                t::AwsVpcConfiguration::builder()
                                    .set_subnets(Some(strings(&net["Subnets"])))
                                    .set_security_groups(Some(strings(&net["SecurityGroups"])))
                                    .assign_public_ip(t::AssignPublicIp::from(
                                        s(&net["AssignPublicIp"]).as_str(),
                                    ))
                                    .build()
                                    .map_err(err("network"))?,
                            )
                            .build(),
                    )
                    .build()
                    .map_err(err("ECS parameters"))?,
            )
            .build()
            .map_err(err("target"))?;
        let window = t::FlexibleTimeWindow::builder()
            .mode(t::FlexibleTimeWindowMode::Off)
            .build()
            .map_err(err("window"))?;
        if current.is_ok() {
            self.aws
                .scheduler
                .update_schedule()
                .name(&name)
                .group_name(&group)
                .schedule_expression(s(&sc["ScheduleExpression"]))
                .schedule_expression_timezone(s(&sc["ScheduleExpressionTimezone"]))
                .flexible_time_window(window)
                .target(target)
                .state(t::ScheduleState::Enabled)
                .send()
                .await
                .map_err(failed(format!("Scheduler UpdateSchedule {name}")))?;
        } else {
            self.aws
                .scheduler
                .create_schedule()
                .name(&name)
                .group_name(&group)
                .schedule_expression(s(&sc["ScheduleExpression"]))
                .schedule_expression_timezone(s(&sc["ScheduleExpressionTimezone"]))
                .flexible_time_window(window)
                .target(target)
                .state(t::ScheduleState::Enabled)
                .send()
                .await
                .map_err(failed(format!("Scheduler CreateSchedule {name}")))?;
        }
        Ok(())
    }

    async fn dashboard(&mut self, d: &Value) -> Result<()> {
        let name = s(&d["DashboardName"]);
        let body = s(&d["DashboardBody"]);
        if let Ok(cur) = self
            .aws
            .cloudwatch
            .get_dashboard()
            .dashboard_name(&name)
            .send()
            .await
        {
            let same = cur
                .dashboard_body()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                == serde_json::from_str::<Value>(&body).ok();
            if same {
                return Ok(());
            }
        }
        if self.change(format!("put dashboard {name}")) {
            self.aws
                .cloudwatch
                .put_dashboard()
                .dashboard_name(&name)
                .dashboard_body(&body)
                .send()
                .await
                .map_err(failed(format!("CloudWatch PutDashboard {name}")))?;
        }
        Ok(())
    }
}

fn k_only_fifo(differ: &[&(aws_sdk_sqs::types::QueueAttributeName, String)]) -> &'static bool {
    // FifoQueue cannot change after creation; a difference there alone is not acted on.
    if differ
        .iter()
        .all(|(k, _)| *k == aws_sdk_sqs::types::QueueAttributeName::FifoQueue)
    {
        &true
    } else {
        &false
    }
}

fn normalize_redrive(v: &Value) -> Value {
    serde_json::json!({
        "deadLetterTargetArn": s(&v["deadLetterTargetArn"]),
        "maxReceiveCount": s(&v["maxReceiveCount"]),
    })
}

fn ecs_tags(v: &Value) -> Vec<aws_sdk_ecs::types::Tag> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            aws_sdk_ecs::types::Tag::builder()
                .key(s(&t["key"]))
                .value(s(&t["value"]))
                .build()
        })
        .collect()
}

/// Wait for each service's deployment: done when the primary deployment completes;
/// fails fast, with the stopped tasks' reasons, when the circuit breaker rolls back.
pub async fn wait(aws: &Aws, plan: &Value, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    for svc in plan["services"].as_array().into_iter().flatten() {
        let (cluster, name) = (s(&svc["cluster"]), s(&svc["serviceName"]));
        loop {
            let out = aws
                .ecs
                .describe_services()
                .cluster(&cluster)
                .services(&name)
                .send()
                .await
                .map_err(failed(format!("ECS DescribeServices {name}")))?;
            let Some(cur) = out.services().first() else {
                return Err(ApplyError(format!("service {name} not found")));
            };
            let primary = cur
                .deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"));
            let state = primary
                .and_then(|d| d.rollout_state())
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default();
            eprintln!(
                "  {name}: {state:<12} desired {} running {} pending {}",
                cur.desired_count(),
                cur.running_count(),
                cur.pending_count()
            );
            match state.as_str() {
                "COMPLETED" => break,
                "FAILED" => {
                    let reasons = stopped_reasons(aws, &cluster, &name).await;
                    return Err(ApplyError(format!(
                        "deployment of {name} failed and was rolled back: {}",
                        reasons.join("; ")
                    )));
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(ApplyError(format!(
                    "deployment of {name} did not finish within {}s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    Ok(())
}

async fn stopped_reasons(aws: &Aws, cluster: &str, service: &str) -> Vec<String> {
    let Ok(list) = aws
        .ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
    else {
        return vec!["(stopped tasks unavailable)".into()];
    };
    if list.task_arns().is_empty() {
        return vec!["(no stopped task)".into()];
    }
    match aws
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(list.task_arns().to_vec()))
        .send()
        .await
    {
        Ok(out) => out
            .tasks()
            .iter()
            .map(|t| t.stopped_reason().unwrap_or("?").to_owned())
            .collect(),
        Err(e) => vec![describe(&e)],
    }
}

/// `status`: desired/running/pending, deployments, scaling policies and recent events.
pub async fn status(aws: &Aws, stack: &Stack) -> Result<String> {
    let mut out = String::new();
    for (name, res) in &stack.resources {
        let svc_name = render::family(stack, name);
        match res {
            super::stack::Resource::WorkerService(_) => {
                let d = aws
                    .ecs
                    .describe_services()
                    .cluster(&stack.cluster)
                    .services(&svc_name)
                    .send()
                    .await
                    .map_err(failed(format!("ECS DescribeServices {svc_name}")))?;
                match d.services().iter().find(|x| x.status() == Some("ACTIVE")) {
                    None => out.push_str(&format!(
                        "{name} (worker-service {svc_name}): not deployed\n"
                    )),
                    Some(x) => {
                        out.push_str(&format!("{name} (worker-service {svc_name}): desired {} running {} pending {}\n", x.desired_count(), x.running_count(), x.pending_count()));
                        for dep in x.deployments() {
                            out.push_str(&format!(
                                "  deployment {} {} rollout {} running {}/{}\n",
                                dep.status().unwrap_or("?"),
                                dep.task_definition().unwrap_or("?"),
                                dep.rollout_state().map(|r| r.as_str()).unwrap_or("-"),
                                dep.running_count(),
                                dep.desired_count()
                            ));
                        }
                        let id = format!("service/{}/{svc_name}", stack.cluster);
                        if let Ok(p) = aws
                            .scaling
                            .describe_scaling_policies()
                            .service_namespace(
                                aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs,
                            )
                            .resource_id(&id)
                            .send()
                            .await
                        {
                            for pol in p.scaling_policies() {
                                let target = pol
                                    .target_tracking_scaling_policy_configuration()
                                    .map(|c| c.target_value())
                                    .unwrap_or(0.0);
                                out.push_str(&format!(
                                    "  scaling policy {} target {target}\n",
                                    pol.policy_name()
                                ));
                            }
                        }
                        for ev in x.events().iter().take(5) {
                            out.push_str(&format!("  event: {}\n", ev.message().unwrap_or("")));
                        }
                    }
                }
            }
            super::stack::Resource::ScheduledJob(j) => {
                let st = aws
                    .scheduler
                    .get_schedule()
                    .name(&svc_name)
                    .group_name(render::schedule_group(stack))
                    .send()
                    .await;
                match st {
                    Ok(s) => out.push_str(&format!(
                        "{name} (scheduled-job): {} {} state {}\n",
                        s.schedule_expression().unwrap_or(&j.schedule),
                        s.schedule_expression_timezone().unwrap_or("UTC"),
                        s.state().map(|x| x.as_str()).unwrap_or("?")
                    )),
                    Err(_) => out.push_str(&format!("{name} (scheduled-job): not deployed\n")),
                }
            }
            super::stack::Resource::SqsQueue(q) => {
                let qn = render::queue_name(stack, name, q.fifo);
                match aws.sqs.get_queue_url().queue_name(&qn).send().await {
                    Ok(u) => {
                        let url = u.queue_url().unwrap_or_default().to_owned();
                        let a = aws.sqs.get_queue_attributes().queue_url(&url).attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible).send().await;
                        let attrs = a
                            .ok()
                            .and_then(|a| a.attributes().cloned())
                            .unwrap_or_default();
                        let get = |k| attrs.get(&k).cloned().unwrap_or_default();
                        out.push_str(&format!("{name} (sqs-queue {qn}): visible {} in flight {}\n", get(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages), get(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)));
                    }
                    Err(_) => out.push_str(&format!("{name} (sqs-queue): not deployed\n")),
                }
            }
        }
    }
    Ok(out)
}

/// `delete`: only what this stack created, found by its names and its tag.
pub async fn delete(aws: &Aws, stack: &Stack) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let tag_is_ours = |tags: &[aws_sdk_ecs::types::Tag]| {
        tags.iter()
            .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(stack.stack.as_str()))
    };
    // Services (scale to zero, then delete) and their scaling.
    if let Ok(list) = aws.ecs.list_services().cluster(&stack.cluster).send().await {
        let arns = list.service_arns().to_vec();
        for arn in arns {
            let tags = aws
                .ecs
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await
                .map(|t| t.tags().to_vec())
                .unwrap_or_default();
            if !tag_is_ours(&tags) {
                continue;
            }
            let name = arn.rsplit('/').next().unwrap_or_default().to_owned();
            let id = format!("service/{}/{name}", stack.cluster);
            let _ = aws.scaling.deregister_scalable_target().service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
                .resource_id(&id).scalable_dimension(aws_sdk_applicationautoscaling::types::ScalableDimension::EcsServiceDesiredCount).send().await;
            aws.ecs
                .delete_service()
                .cluster(&stack.cluster)
                .service(&name)
                .force(true)
                .send()
                .await
                .map_err(failed(format!("ECS DeleteService {name}")))?;
            done.push(format!("service {name}"));
            let _ = aws
                .cloudwatch
                .delete_dashboards()
                .dashboard_names(&name)
                .send()
                .await;
        }
    }
    // Schedules go with their group.
    let group = render::schedule_group(stack);
    if aws
        .scheduler
        .get_schedule_group()
        .name(&group)
        .send()
        .await
        .is_ok()
    {
        aws.scheduler
            .delete_schedule_group()
            .name(&group)
            .send()
            .await
            .map_err(failed(format!("Scheduler DeleteScheduleGroup {group}")))?;
        done.push(format!("schedule group {group}"));
    }
    // Task definitions of the stack's families.
    for (name, res) in &stack.resources {
        if res.container().is_none() {
            continue;
        }
        let fam = render::family(stack, name);
        if let Ok(list) = aws
            .ecs
            .list_task_definitions()
            .family_prefix(&fam)
            .send()
            .await
        {
            for arn in list.task_definition_arns() {
                let _ = aws
                    .ecs
                    .deregister_task_definition()
                    .task_definition(arn)
                    .send()
                    .await;
                done.push(format!("task definition {arn}"));
            }
        }
    }
    // Queues with the stack's prefix and tag.
    if let Ok(list) = aws
        .sqs
        .list_queues()
        .queue_name_prefix(format!("{}-", stack.stack))
        .send()
        .await
    {
        for url in list.queue_urls() {
            let tags = aws
                .sqs
                .list_queue_tags()
                .queue_url(url)
                .send()
                .await
                .ok()
                .and_then(|t| t.tags().cloned())
                .unwrap_or_default();
            if tags.get(STACK_TAG).map(String::as_str) != Some(stack.stack.as_str()) {
                continue;
            }
            aws.sqs
                .delete_queue()
                .queue_url(url)
                .send()
                .await
                .map_err(failed(format!("SQS DeleteQueue {url}")))?;
            done.push(format!("queue {url}"));
        }
    }
    // Log groups under /bosun/{stack}/.
    if let Ok(list) = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/bosun/{}/", stack.stack))
        .send()
        .await
    {
        for g in list.log_groups() {
            if let Some(name) = g.log_group_name() {
                aws.logs
                    .delete_log_group()
                    .log_group_name(name)
                    .send()
                    .await
                    .map_err(failed(format!("Logs DeleteLogGroup {name}")))?;
                done.push(format!("log group {name}"));
            }
        }
    }
    // Roles under the IAM path /bosun/{stack}/.
    if let Ok(list) = aws
        .iam
        .list_roles()
        .path_prefix(render::role_path(stack))
        .send()
        .await
    {
        for r in list.roles() {
            let name = r.role_name();
            if let Ok(p) = aws.iam.list_role_policies().role_name(name).send().await {
                for pol in p.policy_names() {
                    let _ = aws
                        .iam
                        .delete_role_policy()
                        .role_name(name)
                        .policy_name(pol)
                        .send()
                        .await;
                }
            }
            aws.iam
                .delete_role()
                .role_name(name)
                .send()
                .await
                .map_err(failed(format!("IAM DeleteRole {name}")))?;
            done.push(format!("role {name}"));
        }
    }
    Ok(done)
}

/// Parse `10m`, `2h`, `30s`, `1d` into seconds.
pub fn parse_since(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 30s, 10m, 2h or 1d"))?;
    let mult = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("'{s}': unit '{unit}' is not s, m, h or d")),
    };
    Ok(n * mult)
}

/// `logs`: the resource's CloudWatch Logs events since `since_secs` ago, oldest first;
/// with `follow`, keep printing new ones until interrupted.
pub async fn logs(
    aws: &Aws,
    stack: &Stack,
    resource: &str,
    since_secs: i64,
    follow: bool,
) -> Result<()> {
    match stack.resources.get(resource) {
        Some(r) if r.container().is_some() => {}
        Some(r) => {
            return Err(ApplyError(format!(
                "'{resource}' is a {}: it has no logs",
                r.kind()
            )))
        }
        None => {
            let names: Vec<&String> = stack
                .resources
                .iter()
                .filter(|(_, r)| r.container().is_some())
                .map(|(n, _)| n)
                .collect();
            return Err(ApplyError(format!(
                "no resource named '{resource}' (with logs: {names:?})"
            )));
        }
    }
    let group = render::log_group(stack, resource);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut start = now_ms - since_secs * 1000;
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let mut token: Option<String> = None;
        let mut newest = start;
        loop {
            let out = aws
                .logs
                .filter_log_events()
                .log_group_name(&group)
                .start_time(start)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(failed(format!("Logs FilterLogEvents {group}")))?;
            for e in out.events() {
                let id = e.event_id().unwrap_or_default().to_owned();
                if !seen.insert(id) {
                    continue;
                }
                let ts = e.timestamp().unwrap_or(0);
                newest = newest.max(ts);
                let stream = e
                    .log_stream_name()
                    .unwrap_or("")
                    .rsplit('/')
                    .next()
                    .unwrap_or("");
                println!(
                    "{} {stream} {}",
                    aws_smithy_types::DateTime::from_millis(ts),
                    e.message().unwrap_or("").trim_end()
                );
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        if !follow {
            return Ok(());
        }
        start = newest;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
