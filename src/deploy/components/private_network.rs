//! Services with ports: the stack's private DNS namespace (`{stack}.internal`, in the
//! tasks' VPC, made only when some service has ports), a Cloud Map service for each
//! (`{name}.{stack}.internal`, A records of its tasks' addresses), and an inbound
//! rule of the stack's security group per port, from that group alone: the stack's
//! tasks reach each other's ports, nothing else does.

use std::collections::{BTreeMap, BTreeSet};

use super::{Builder, Cx, Dep};
use crate::deploy::naming;
use crate::deploy::resources::{cloud_map, ingress_rule};

/// What apply has made of Cloud Map (what `render` and a first `diff` lack).
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub namespace_id: Option<String>,
    /// Resource → its Cloud Map service's ARN.
    pub services: BTreeMap<String, String>,
}

/// How long resolvers keep a task's address: short, since tasks come and go with
/// deployments and scaling (ECS registers and deregisters them).
const TTL: i64 = 10;

/// The namespace, the Cloud Map services and the ingress rules; returns each
/// service's Cloud Map service, for its ECS service to depend on.
pub fn add(cx: &Cx<'_>, b: &mut Builder, group: Option<&Dep>) -> BTreeMap<String, Dep> {
    let stack = cx.stack;
    let services = stack.private_services();
    if services.is_empty() {
        return BTreeMap::new();
    }
    b.preflight.dns_vpc = cx.t.network.as_ref().map(|n| n.vpc.clone());
    let vpc =
        cx.t.network
            .as_ref()
            .map_or_else(|| "(the tasks' VPC)".to_owned(), |n| n.vpc.clone());
    let namespace = b.add(
        cloud_map::Namespace {
            name: naming::namespace(cx.name()),
            description: format!(
                "bosun-deploy stack {}: its services' private DNS names, in {vpc}",
                cx.name()
            ),
            vpc,
            tags: cx.tags_kv(),
        },
        &[],
    );
    let namespace_id =
        cx.t.discovery
            .namespace_id
            .clone()
            .unwrap_or_else(|| cloud_map::PENDING_NAMESPACE.to_owned());
    let mut out = BTreeMap::new();
    for (name, _) in &services {
        let dep = b.add(
            cloud_map::Service {
                name: naming::discovery_service(name),
                namespace_id: namespace_id.clone(),
                description: format!("bosun-deploy stack {}: the tasks of {name}", cx.name()),
                dns_config: cloud_map::DnsConfig {
                    routing_policy: "MULTIVALUE".into(),
                    dns_records: vec![cloud_map::DnsRecord {
                        kind: "A".into(),
                        ttl: TTL,
                    }],
                },
                health_check_custom_config: cloud_map::CustomHealth {},
                tags: cx.tags_kv(),
            },
            std::slice::from_ref(&namespace),
        );
        out.insert((*name).to_owned(), dep);
    }
    // One rule per port and protocol, whichever services share it.
    let ports: BTreeSet<(&str, u16)> = services
        .iter()
        .flat_map(|(_, ports)| {
            ports
                .iter()
                .map(|p| (p.protocol.as_str(), p.container_port))
        })
        .collect();
    let group_name = naming::security_group(cx.name());
    let group_id = cx.stack_group();
    for (protocol, port) in ports {
        b.add(
            ingress_rule::IngressRule::new(&group_name, &group_id, protocol, port, cx.tags_kv()),
            group.map(std::slice::from_ref).unwrap_or_default(),
        );
    }
    out
}

/// A private service's registry ARN for its ECS service (a placeholder until apply
/// makes it).
pub fn registry_arn(cx: &Cx<'_>, name: &str) -> String {
    cx.t.discovery
        .services
        .get(name)
        .cloned()
        .unwrap_or_else(|| cloud_map::PENDING_SERVICE.to_owned())
}

/// The variables of a connection to a private service: its host name and first port.
pub fn connection(cx: &Cx<'_>, target: &str) -> Vec<(String, String)> {
    let Some(port) = cx.stack.ports(target).first() else {
        return Vec::new();
    };
    let e = naming::env_name(target);
    vec![
        (
            format!("STP_{e}_HOST"),
            naming::private_host(cx.name(), target),
        ),
        (format!("STP_{e}_PORT"), port.container_port.to_string()),
    ]
}
