//! EC2 launch templates (`{stack}-{resource}`) of the stack's container instances. A
//! change is a new version, made the default; the Auto Scaling group launches
//! `$Latest`, so instances launched from then on have it and the ones running are
//! replaced within the group's `MaxInstanceLifetime`.

use std::collections::BTreeSet;

use aws_sdk_ec2::types as t;
use serde::Serialize;

use super::KvTag;
use crate::deploy::engine::error::{absent_on, failed, Result};
use crate::deploy::engine::{Ctx, Kind, Observed, Owned};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LaunchTemplate {
    pub launch_template_name: String,
    pub launch_template_data: Data,
    pub tags: Vec<KvTag>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Data {
    /// `resolve:ssm:/aws/service/ecs/optimized-ami/...`: EC2 reads the ECS-optimized
    /// AMI from its public parameter at every launch, so a replaced instance is a
    /// patched one.
    pub image_id: String,
    /// One type (a group of several names them in its mixed instances policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    pub iam_instance_profile: Profile,
    /// Base64 of the shell script that joins the cluster.
    pub user_data: String,
    pub network_interfaces: Vec<Nic>,
    pub metadata_options: Metadata,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Profile {
    pub arn: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Nic {
    pub device_index: i32,
    pub associate_public_ip_address: bool,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    /// IMDSv2 only.
    pub http_tokens: String,
    pub http_endpoint: String,
}

fn tags_of(t: &[t::Tag]) -> impl Iterator<Item = (&str, &str)> + Clone {
    t.iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
}

fn sdk_tags(tags: &[KvTag]) -> Vec<t::Tag> {
    tags.iter()
        .map(|k| t::Tag::builder().key(&k.key).value(&k.value).build())
        .collect()
}

impl Data {
    fn request(&self) -> t::RequestLaunchTemplateData {
        let nics = self
            .network_interfaces
            .iter()
            .map(|n| {
                t::LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .device_index(n.device_index)
                    .associate_public_ip_address(n.associate_public_ip_address)
                    .set_groups(Some(n.groups.clone()))
                    .build()
            })
            .collect();
        t::RequestLaunchTemplateData::builder()
            .image_id(&self.image_id)
            .set_instance_type(self.instance_type.as_deref().map(t::InstanceType::from))
            .iam_instance_profile(
                t::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .arn(&self.iam_instance_profile.arn)
                    .build(),
            )
            .user_data(&self.user_data)
            .set_network_interfaces(Some(nics))
            .metadata_options(
                t::LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_tokens(t::LaunchTemplateHttpTokensState::from(
                        self.metadata_options.http_tokens.as_str(),
                    ))
                    .http_endpoint(t::LaunchTemplateInstanceMetadataEndpointState::from(
                        self.metadata_options.http_endpoint.as_str(),
                    ))
                    .build(),
            )
            .build()
    }

    fn observed(d: &t::ResponseLaunchTemplateData) -> Data {
        Data {
            image_id: d.image_id().unwrap_or_default().to_owned(),
            instance_type: d.instance_type().map(|i| i.as_str().to_owned()),
            iam_instance_profile: Profile {
                arn: d
                    .iam_instance_profile()
                    .and_then(|p| p.arn())
                    .unwrap_or_default()
                    .to_owned(),
            },
            user_data: d.user_data().unwrap_or_default().to_owned(),
            network_interfaces: d
                .network_interfaces()
                .iter()
                .map(|n| Nic {
                    device_index: n.device_index().unwrap_or(0),
                    associate_public_ip_address: n.associate_public_ip_address().unwrap_or(false),
                    groups: n.groups().to_vec(),
                })
                .collect(),
            metadata_options: Metadata {
                http_tokens: d
                    .metadata_options()
                    .and_then(|m| m.http_tokens())
                    .map(|h| h.as_str().to_owned())
                    .unwrap_or_else(|| "optional".into()),
                http_endpoint: d
                    .metadata_options()
                    .and_then(|m| m.http_endpoint())
                    .map(|h| h.as_str().to_owned())
                    .unwrap_or_else(|| "enabled".into()),
            },
        }
    }
}

const NOT_FOUND: &[&str] = &[
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
];

impl Kind for LaunchTemplate {
    const KIND: &'static str = "EC2 launch template";
    const PLURAL: &'static str = "launchTemplates";
    const DEPENDS_ON: &'static [&'static str] = &[
        super::instance_profile::InstanceProfile::KIND,
        super::security_group::SecurityGroup::KIND,
        super::cluster::Cluster::KIND,
    ];

    fn name(&self) -> String {
        self.launch_template_name.clone()
    }

    async fn read(&self, ctx: &Ctx) -> Result<Observed<Self>> {
        let name = &self.launch_template_name;
        let out = ctx
            .aws
            .ec2
            .describe_launch_templates()
            .launch_template_names(name)
            .send()
            .await;
        let Some(out) = absent_on(out, NOT_FOUND, "EC2 DescribeLaunchTemplates", name)? else {
            return Ok(Observed::Absent);
        };
        let Some(lt) = out.launch_templates().first() else {
            return Ok(Observed::Absent);
        };
        if !ctx.owns(tags_of(lt.tags())) {
            return Ok(Observed::Foreign(ctx.why_not(tags_of(lt.tags()))));
        }
        let versions = ctx
            .aws
            .ec2
            .describe_launch_template_versions()
            .launch_template_name(name)
            .versions("$Latest")
            .send()
            .await
            .map_err(failed("EC2 DescribeLaunchTemplateVersions", name))?;
        let Some(data) = versions
            .launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
        else {
            return Ok(Observed::Absent);
        };
        Ok(Observed::Present(LaunchTemplate {
            launch_template_name: name.clone(),
            launch_template_data: Data::observed(data),
            tags: super::keep_kv_tags(tags_of(lt.tags()), &self.tags),
        }))
    }

    async fn create(&self, ctx: &Ctx) -> Result<()> {
        let name = &self.launch_template_name;
        ctx.aws
            .ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(self.launch_template_data.request())
            .tag_specifications(
                t::TagSpecification::builder()
                    .resource_type(t::ResourceType::LaunchTemplate)
                    .set_tags(Some(sdk_tags(&self.tags)))
                    .build(),
            )
            .client_token(format!("bosun-{}", crate::deploy::naming::short_hash(name)))
            .send()
            .await
            .map_err(failed("EC2 CreateLaunchTemplate", name))?;
        Ok(())
    }

    async fn update(&self, have: &Self, ctx: &Ctx) -> Result<()> {
        let name = &self.launch_template_name;
        if have.launch_template_data != self.launch_template_data {
            let out = ctx
                .aws
                .ec2
                .create_launch_template_version()
                .launch_template_name(name)
                .launch_template_data(self.launch_template_data.request())
                .send()
                .await
                .map_err(failed("EC2 CreateLaunchTemplateVersion", name))?;
            let version = out
                .launch_template_version()
                .and_then(|v| v.version_number())
                .map(|n| n.to_string())
                .unwrap_or_else(|| "$Latest".into());
            ctx.aws
                .ec2
                .modify_launch_template()
                .launch_template_name(name)
                .default_version(version)
                .send()
                .await
                .map_err(failed("EC2 ModifyLaunchTemplate", name))?;
        }
        if have.tags != self.tags {
            let described = ctx
                .aws
                .ec2
                .describe_launch_templates()
                .launch_template_names(name)
                .send()
                .await
                .map_err(failed("EC2 DescribeLaunchTemplates", name))?;
            let id = described
                .launch_templates()
                .first()
                .and_then(|l| l.launch_template_id())
                .unwrap_or_default()
                .to_owned();
            ctx.aws
                .ec2
                .create_tags()
                .resources(id)
                .set_tags(Some(sdk_tags(&self.tags)))
                .send()
                .await
                .map_err(failed("EC2 CreateTags", name))?;
        }
        Ok(())
    }

    async fn list_owned(ctx: &Ctx, _wanted: &BTreeSet<String>) -> Result<Vec<Owned>> {
        let mut pages = ctx
            .aws
            .ec2
            .describe_launch_templates()
            .filters(
                t::Filter::builder()
                    .name(format!("tag:{}", crate::deploy::naming::STACK_TAG))
                    .values(&ctx.stack)
                    .build(),
            )
            .into_paginator()
            .send();
        let mut owned = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("EC2 DescribeLaunchTemplates", &ctx.stack))?;
            owned.extend(
                page.launch_templates()
                    .iter()
                    .filter(|l| ctx.owns(tags_of(l.tags())))
                    .map(|l| Owned {
                        name: l.launch_template_name().unwrap_or_default().to_owned(),
                        handle: l.launch_template_id().unwrap_or_default().to_owned(),
                    }),
            );
        }
        Ok(owned)
    }

    async fn delete(owned: &Owned, ctx: &Ctx) -> Result<()> {
        let out = ctx
            .aws
            .ec2
            .delete_launch_template()
            .launch_template_name(&owned.name)
            .send()
            .await;
        absent_on(out, NOT_FOUND, "EC2 DeleteLaunchTemplate", &owned.name)?;
        Ok(())
    }
}
