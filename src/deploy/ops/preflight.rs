//! What a deploy needs that the stack does not create, checked before the first
//! mutating call.

use crate::deploy::components::{DefaultNetwork, Preflight};
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
    if !p.subnets.is_empty() {
        let out = ctx
            .aws
            .ec2
            .describe_subnets()
            .set_subnet_ids(Some(p.subnets.clone()))
            .send()
            .await;
        match absent_on(
            out,
            &["InvalidSubnetID.NotFound"],
            "EC2 DescribeSubnets",
            &p.subnets.join(","),
        )? {
            Some(_) => {}
            None => missing.push(format!("subnets {} (not all exist)", p.subnets.join(", "))),
        }
    }
    if !p.security_groups.is_empty() {
        let out = ctx
            .aws
            .ec2
            .describe_security_groups()
            .set_group_ids(Some(p.security_groups.clone()))
            .send()
            .await;
        match absent_on(
            out,
            &["InvalidGroup.NotFound", "InvalidGroupId.NotFound"],
            "EC2 DescribeSecurityGroups",
            &p.security_groups.join(","),
        )? {
            Some(_) => {}
            None => missing.push(format!(
                "security groups {} (not all exist)",
                p.security_groups.join(", ")
            )),
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
    let mut secrets = p.secrets.clone();
    secrets.sort();
    secrets.dedup();
    let found = engine::bounded(
        secrets
            .iter()
            .map(|name| async move { Ok(secret_arn(ctx, name).await?.is_some()) }),
    )
    .await?;
    for (name, ok) in secrets.iter().zip(found) {
        if !ok {
            missing.push(format!("secret {name}"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DeployError::Preflight(format!(
            "the stack needs what does not exist in account {} ({}): {}",
            ctx.account,
            ctx.region,
            missing.join("; ")
        )))
    }
}

/// The region's default VPC, its default subnets (one per Availability Zone), and the
/// stack's own security group there once apply made it; read once a run. A region
/// without a default VPC is refused before any change, saying how to write
/// `network`. Default subnets give their instances public IPs and route to an
/// internet gateway (Amazon VPC User Guide, "Default VPCs": "Default VPC components").
pub async fn default_network(ctx: &Ctx) -> Result<DefaultNetwork> {
    let found = ctx
        .once("default-network".into(), || async {
            let filter = |n: &str, v: &str| {
                aws_sdk_ec2::types::Filter::builder()
                    .name(n)
                    .values(v)
                    .build()
            };
            let vpcs = ctx
                .aws
                .ec2
                .describe_vpcs()
                .filters(filter("is-default", "true"))
                .send()
                .await
                .map_err(failed("EC2 DescribeVpcs", "is-default=true"))?;
            let Some(vpc) = vpcs.vpcs().first().and_then(|v| v.vpc_id()) else {
                return Err(DeployError::Preflight(format!(
                    "the file gives no network and region {} of account {} has no default VPC: write one, e.g. `network: {{ subnets: [subnet-…, subnet-…], securityGroups: [sg-…] }}` (subnets with a route to ECR: a NAT gateway, VPC endpoints, or `assignPublicIp: true` in public subnets), or make a default VPC with `aws ec2 create-default-vpc`",
                    ctx.region, ctx.account
                )));
            };
            let subnets = ctx
                .aws
                .ec2
                .describe_subnets()
                .filters(filter("vpc-id", vpc))
                .filters(filter("default-for-az", "true"))
                .send()
                .await
                .map_err(failed("EC2 DescribeSubnets", vpc))?;
            let mut subnets: Vec<String> = subnets
                .subnets()
                .iter()
                .filter_map(|s| s.subnet_id().map(str::to_owned))
                .collect();
            subnets.sort();
            if subnets.is_empty() {
                return Err(DeployError::Preflight(format!(
                    "the file gives no network and the default VPC {vpc} of region {} has no default subnets: write `network: {{ subnets: [...] }}`, or make them with `aws ec2 create-default-subnet`",
                    ctx.region
                )));
            }
            let name = naming::security_group(&ctx.stack);
            let group = security_group::find(ctx, vpc, &name).await?.map(|(id, _)| id);
            Ok(DefaultNetwork {
                vpc: vpc.to_owned(),
                subnets,
                group,
            })
        })
        .await?;
    Ok((*found).clone())
}
