//! What a deploy needs that the stack does not create, checked before the first
//! mutating call.

use crate::deploy::components::{Preflight, StackNetwork};
use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::{self, Ctx};
use crate::deploy::naming;
use crate::deploy::resources::security_group;

/// A secret's complete ARN (with the six characters Secrets Manager adds), or `None`
/// when it does not exist: DescribeSecret, read once a run (the render and the
/// preflight both need it).
pub async fn secret_arn(ctx: &Ctx, name: &str) -> Result<Option<String>> {
    let arn = ctx
        .once(format!("secret:{name}"), || async {
            let out = ctx
                .aws
                .secrets
                .describe_secret()
                .secret_id(name)
                .send()
                .await;
            Ok(absent_on(
                out,
                &["ResourceNotFoundException"],
                "SecretsManager DescribeSecret",
                name,
            )?
            .and_then(|o| o.arn().map(str::to_owned)))
        })
        .await?;
    Ok((*arn).clone())
}

/// Everything a deploy needs that the stack does not create: its subnets, security
/// groups and secrets. Checked before the first mutating call, so a stack that
/// cannot deploy changes nothing; once a run (the ECR repositories made before the
/// push and the plan after it check the same stack).
pub async fn preflight(ctx: &Ctx, p: &Preflight) -> Result<()> {
    ctx.once("preflight".into(), || check(ctx, p)).await?;
    Ok(())
}

async fn check(ctx: &Ctx, p: &Preflight) -> Result<()> {
    let mut missing = Vec::new();
    // Filters, not ids: DescribeSubnets and DescribeSecurityGroups refuse a whole list
    // for one id that does not exist (EC2 API Reference, Error codes:
    // InvalidSubnetID.NotFound, InvalidGroup.NotFound), and only the missing ones are
    // to be named.
    let lacking = |want: &[String], have: Vec<String>| -> Vec<String> {
        want.iter().filter(|w| !have.contains(w)).cloned().collect()
    };
    if !p.subnets.is_empty() {
        let have = subnet_ids(
            ctx,
            vec![filter("subnet-id", &p.subnets)],
            &p.subnets.join(","),
        )
        .await?;
        for s in lacking(&p.subnets, have) {
            missing.push(format!(
                "subnet {s} ({})",
                at(&p.subnets, &p.subnets_at, &s)
            ));
        }
    }
    if !p.security_groups.is_empty() {
        let have = group_ids(
            ctx,
            filter("group-id", &p.security_groups),
            &p.security_groups.join(","),
        )
        .await?;
        for g in lacking(&p.security_groups, have) {
            missing.push(format!(
                "security group {g} ({})",
                at(&p.security_groups, &p.security_groups_at, &g)
            ));
        }
    }
    if !p.capacity_providers.is_empty() {
        // The stack's own cluster gets them; a shared one must have them already.
        if let Some(have) =
            crate::deploy::resources::cluster::foreign_providers(ctx, &ctx.cluster).await?
        {
            let lacking: Vec<&str> = p
                .capacity_providers
                .iter()
                .filter(|x| !have.contains(x))
                .map(String::as_str)
                .collect();
            if !lacking.is_empty() {
                missing.push(format!(
                    "capacity providers {} on cluster {} (the spot services' strategy names them; the cluster is not this stack's, so bosun-deploy does not change it: associate them with `aws ecs put-cluster-capacity-providers`, or give the stack a cluster of its own)",
                    lacking.join(", "),
                    ctx.cluster
                ));
            }
        }
    }
    if !p.ec2_resources.is_empty() {
        if crate::deploy::resources::cluster::foreign_providers(ctx, &ctx.cluster)
            .await?
            .is_some()
        {
            missing.push(format!(
                "a cluster of the stack's own ({} run on EC2 instances through capacity providers the stack creates, which must go on the cluster; cluster {} is not this stack's, so bosun-deploy does not change it: give the stack a cluster of its own)",
                p.ec2_resources.join(", "),
                ctx.cluster
            ));
        }
        let out = ctx
            .aws
            .ssm
            .get_parameters()
            .set_names(Some(p.ami_parameters.clone()))
            .send()
            .await
            .map_err(failed("SSM GetParameters", p.ami_parameters.join(",")))?;
        for name in out.invalid_parameters() {
            missing.push(format!(
                "the ECS-optimized AMI's public parameter {name} (the region has no such AMI)"
            ));
        }
    }
    if let Some(vpc) = &p.dns_vpc {
        missing.extend(vpc_dns(ctx, vpc).await?);
    }
    missing.extend(secrets(ctx, p).await?);
    missing.extend(params(ctx, p).await?);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DeployError::Preflight(format!(
            "the stack needs what does not exist in account {} ({}):\n  {}",
            ctx.account,
            ctx.region,
            missing.join("\n  ")
        )))
    }
}

/// The region's default VPC, its default subnets (one per Availability Zone), and the
/// stack's own security group there once apply made it; read once a run. A region
/// without a default VPC is refused before any change, saying how to write
/// `network`. Default subnets give their instances public IPs and route to an
/// internet gateway (Amazon VPC User Guide, "Default VPCs": "Default VPC components").
pub async fn default_network(ctx: &Ctx) -> Result<StackNetwork> {
    let found = ctx
        .once("default-network".into(), || async {
            let one = |n: &str, v: &str| filter(n, &[v.to_owned()]);
            let vpcs = ctx
                .aws
                .ec2
                .describe_vpcs()
                .filters(one("is-default", "true"))
                .send()
                .await
                .map_err(failed("EC2 DescribeVpcs", "is-default=true"))?;
            let Some(vpc) = vpcs.vpcs().first().and_then(|v| v.vpc_id()) else {
                return Err(DeployError::Preflight(format!(
                    "the file gives no network and region {} of account {} has no default VPC: write one, e.g. `network: {{ subnets: [subnet-…, subnet-…], securityGroups: [sg-…] }}` (subnets with a route to ECR: a NAT gateway, VPC endpoints, or `assignPublicIp: true` in public subnets), or make a default VPC with `aws ec2 create-default-vpc`",
                    ctx.region, ctx.account
                )));
            };
            let mut subnets = subnet_ids(
                ctx,
                vec![one("vpc-id", vpc), one("default-for-az", "true")],
                vpc,
            )
            .await?;
            subnets.sort();
            if subnets.is_empty() {
                return Err(DeployError::Preflight(format!(
                    "the file gives no network and the default VPC {vpc} of region {} has no default subnets: write `network: {{ subnets: [...] }}`, or make them with `aws ec2 create-default-subnet`",
                    ctx.region
                )));
            }
            let name = naming::security_group(&ctx.stack);
            let group = security_group::find(ctx, vpc, &name).await?.map(|(id, _)| id);
            Ok(StackNetwork {
                vpc: vpc.to_owned(),
                subnets,
                group,
            })
        })
        .await?;
    Ok((*found).clone())
}

/// The secrets the tasks read that do not exist, each with where the file references
/// it; and a JSON key a secret does not hold, where the caller may read the secret
/// (a warning otherwise: the deployer's role need not read what the tasks read).
async fn secrets(ctx: &Ctx, p: &Preflight) -> Result<Vec<String>> {
    let mut names: Vec<&(String, String)> = p.secrets.iter().collect();
    names.sort();
    names.dedup_by(|a, b| a.0 == b.0);
    let found = engine::bounded(
        names
            .iter()
            .map(|(name, _)| async move { Ok(secret_arn(ctx, name).await?.is_some()) }),
    )
    .await?;
    let mut missing = Vec::new();
    for ((name, at), ok) in names.iter().zip(&found) {
        if !ok {
            missing.push(format!("secret {name} ({at})"));
        }
    }
    for (name, key, at) in &p.secret_keys {
        if names
            .iter()
            .zip(&found)
            .any(|((n, _), ok)| n == name && !ok)
        {
            continue;
        }
        let out = ctx
            .aws
            .secrets
            .get_secret_value()
            .secret_id(name)
            .send()
            .await;
        match out {
            Ok(v) => {
                let json: Option<serde_json::Value> = v
                    .secret_string()
                    .and_then(|s| serde_json::from_str(s).ok());
                match json {
                    Some(serde_json::Value::Object(m)) if m.contains_key(key) => {}
                    Some(serde_json::Value::Object(m)) => missing.push(format!(
                        "key {key} in secret {name} ({at}; it holds {})",
                        m.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                    _ => missing.push(format!(
                        "key {key} in secret {name} ({at}; its value is not a JSON object)"
                    )),
                }
            }
            Err(e) => eprintln!(
                "bosun-deploy: warning: key {key} of secret {name} ({at}) not checked: GetSecretValue answered {}",
                crate::deploy::engine::error::code_of(&e)
            ),
        }
    }
    Ok(missing)
}

/// The SSM parameters the tasks read that do not exist (GetParameters takes names or
/// ARNs, at most 10 a call, and lists the others as invalid: Systems Manager API
/// reference, GetParameters).
async fn params(ctx: &Ctx, p: &Preflight) -> Result<Vec<String>> {
    let mut names: Vec<&(String, String)> = p.params.iter().collect();
    names.sort();
    names.dedup_by(|a, b| a.0 == b.0);
    let mut missing = Vec::new();
    for chunk in names.chunks(10) {
        let out = ctx
            .aws
            .ssm
            .get_parameters()
            .set_names(Some(chunk.iter().map(|(n, _)| n.clone()).collect()))
            .send()
            .await
            .map_err(failed(
                "SSM GetParameters",
                chunk
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ))?;
        for bad in out.invalid_parameters() {
            let at = chunk
                .iter()
                .find(|(n, _)| n == bad)
                .map_or("", |(_, at)| at.as_str());
            missing.push(format!("SSM parameter {bad} ({at})"));
        }
    }
    Ok(missing)
}

fn filter(name: &str, values: &[String]) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

/// The ids of the subnets that match `filters`, from every page: DescribeSubnets is
/// paged (EC2 API Reference, DescribeSubnets: MaxResults and NextToken; Pagination).
async fn subnet_ids(
    ctx: &Ctx,
    filters: Vec<aws_sdk_ec2::types::Filter>,
    what: &str,
) -> Result<Vec<String>> {
    let mut pages = ctx
        .aws
        .ec2
        .describe_subnets()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(failed("EC2 DescribeSubnets", what))?;
        out.extend(
            page.subnets()
                .iter()
                .filter_map(|s| s.subnet_id().map(str::to_owned)),
        );
    }
    Ok(out)
}

/// The VPC of the file's subnets and the stack's own security group there (where
/// services have ports, the stack's group goes beside the file's); `None` when the
/// subnets are not found (preflight names them). Read once a run.
pub async fn file_network(ctx: &Ctx, subnets: &[String]) -> Result<Option<StackNetwork>> {
    let found = ctx
        .once("file-network".into(), || async {
            let mut pages = ctx
                .aws
                .ec2
                .describe_subnets()
                .filters(filter("subnet-id", subnets))
                .into_paginator()
                .send();
            let mut vpcs = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(failed("EC2 DescribeSubnets", subnets.join(",")))?;
                vpcs.extend(page.subnets().iter().filter_map(|s| {
                    Some((s.subnet_id()?.to_owned(), s.vpc_id()?.to_owned()))
                }));
            }
            let mut distinct: Vec<&str> = vpcs.iter().map(|(_, v)| v.as_str()).collect();
            distinct.sort();
            distinct.dedup();
            let vpc = match distinct.as_slice() {
                [] => return Ok(None),
                [one] => (*one).to_owned(),
                _ => {
                    return Err(DeployError::Preflight(format!(
                        "the file's subnets are in more than one VPC ({}): a stack's tasks, its security group and its private DNS namespace are in one VPC",
                        vpcs.iter()
                            .map(|(s, v)| format!("{s} in {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            };
            let name = naming::security_group(&ctx.stack);
            let group = security_group::find(ctx, &vpc, &name).await?.map(|(id, _)| id);
            Ok(Some(StackNetwork {
                vpc,
                subnets: subnets.to_vec(),
                group,
            }))
        })
        .await?;
    Ok((*found).clone())
}

/// A private DNS namespace answers in its VPC only when the VPC's DNS resolution and
/// DNS hostnames are both on (Route 53 Developer Guide, "Considerations when working
/// with a private hosted zone": enableDnsHostnames and enableDnsSupport must be true;
/// a Cloud Map private namespace is such a zone).
async fn vpc_dns(ctx: &Ctx, vpc: &str) -> Result<Vec<String>> {
    use aws_sdk_ec2::types::VpcAttributeName;
    let mut off = Vec::new();
    for (attr, name, flag) in [
        (
            VpcAttributeName::EnableDnsSupport,
            "enableDnsSupport",
            "--enable-dns-support",
        ),
        (
            VpcAttributeName::EnableDnsHostnames,
            "enableDnsHostnames",
            "--enable-dns-hostnames",
        ),
    ] {
        let out = ctx
            .aws
            .ec2
            .describe_vpc_attribute()
            .vpc_id(vpc)
            .attribute(attr.clone())
            .send()
            .await
            .map_err(failed("EC2 DescribeVpcAttribute", vpc))?;
        let on = match attr {
            VpcAttributeName::EnableDnsSupport => out.enable_dns_support(),
            _ => out.enable_dns_hostnames(),
        }
        .and_then(|v| v.value());
        if on != Some(true) {
            off.push((name, flag));
        }
    }
    Ok(off
        .into_iter()
        .map(|(name, flag)| {
            format!("{name} on in VPC {vpc} (services' private DNS names resolve only with DNS support and DNS hostnames on: `aws ec2 modify-vpc-attribute --vpc-id {vpc} {flag}`)")
        })
        .collect())
}

/// The ids of the security groups that match `filter`, from every page (EC2 API
/// Reference, DescribeSecurityGroups: MaxResults and NextToken).
async fn group_ids(
    ctx: &Ctx,
    filter: aws_sdk_ec2::types::Filter,
    what: &str,
) -> Result<Vec<String>> {
    let mut pages = ctx
        .aws
        .ec2
        .describe_security_groups()
        .filters(filter)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(failed("EC2 DescribeSecurityGroups", what))?;
        out.extend(
            page.security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned)),
        );
    }
    Ok(out)
}

/// Where the file names `item` of `items` (`at` in the same order).
fn at<'a>(items: &[String], at: &'a [String], item: &str) -> &'a str {
    items
        .iter()
        .position(|i| i == item)
        .and_then(|i| at.get(i))
        .map_or("", String::as_str)
}
