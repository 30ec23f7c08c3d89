//! What IAM must allow for each kind's calls: the actions beside the ARNs of the
//! stack's own resources of that kind, from which `bosun-deploy policy` writes the
//! least a deploying identity needs. A kind is listed here once; a test reads every
//! resource file's SDK calls and finds each one's action in its kind's grants, and
//! renders a stack of every type and finds each name inside its kind's `names`.
//!
//! Two uses: what any run reads, lists and deletes ([`When::Always`]: apply and
//! delete list every kind, since a resource the file dropped is still the stack's),
//! and what only a file that has the kind creates and changes ([`When::Making`]).
//!
//! Actions and the resource types they are authorized on: Service Authorization
//! Reference, "Actions, resources, and condition keys for AWS services"
//! (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
//! An action authorized on no resource type is granted on "*" (the reference: "you
//! must specify all resources (*) in the Resource element").

use std::borrow::Cow;

use crate::deploy::naming::{self, Where};

/// Whether a grant serves every run or only a file that has the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    Making,
}

/// One condition of a grant: `{test: {key: values}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub test: &'static str,
    pub key: String,
    pub values: Vec<String>,
}

/// Actions on resources, under at most one condition.
#[derive(Debug, Clone)]
pub struct Grant {
    pub actions: Cow<'static, [&'static str]>,
    pub on: Vec<String>,
    pub when: When,
    pub condition: Option<Condition>,
}

/// A kind's grants and what its resources are called (a glob: `*` any run of
/// characters), so a test can hold every name the stack renders against it.
#[derive(Debug, Clone)]
pub struct Access {
    pub names: Vec<String>,
    pub grants: Vec<Grant>,
}

/// The stack a policy is for.
pub struct Scope<'a> {
    pub at: &'a Where,
    pub stack: &'a str,
    pub cluster: &'a str,
}

impl Scope<'_> {
    fn arn(&self, service: &str, rest: &str) -> String {
        self.at.arn(service, rest)
    }

    /// `{stack}-*`: most of the stack's names.
    fn prefixed(&self) -> String {
        format!("{}-*", self.stack)
    }

    fn roles(&self) -> String {
        self.at.role_arn(self.stack, "*")
    }

    /// Only what carries the stack's tag: deletes, whose targets were found by that tag
    /// (Service Authorization Reference: `aws:ResourceTag/${TagKey}`, on the actions
    /// that list it).
    pub fn tagged(&self) -> Condition {
        Condition {
            test: "StringEquals",
            key: format!("aws:ResourceTag/{}", naming::STACK_TAG),
            values: vec![self.stack.to_owned()],
        }
    }
}

fn grant(when: When, actions: &'static [&'static str], on: &[String]) -> Grant {
    Grant {
        actions: Cow::Borrowed(actions),
        on: on.to_vec(),
        when,
        condition: None,
    }
}

/// What every run needs: `actions` on `on`, unconditioned.
pub fn always(actions: &'static [&'static str], on: &[String]) -> Grant {
    grant(When::Always, actions, on)
}

fn making(actions: &'static [&'static str], on: &[String]) -> Grant {
    grant(When::Making, actions, on)
}

fn star() -> [String; 1] {
    ["*".to_owned()]
}

impl Grant {
    fn only(mut self, condition: Condition) -> Grant {
        self.condition = Some(condition);
        self
    }
}

/// `iam:PassRole` of `roles` to `service` alone (IAM User Guide, "Granting a user
/// permissions to pass a role to an AWS service": the `iam:PassedToService` key).
pub fn pass_role(when: When, roles: Vec<String>, service: &str) -> Grant {
    Grant {
        actions: Cow::Borrowed(&["iam:PassRole"]),
        on: roles,
        when,
        condition: Some(Condition {
            test: "StringEquals",
            key: "iam:PassedToService".into(),
            values: vec![service.to_owned()],
        }),
    }
}

mod compute;
mod stores;

/// The grants of one kind (by [`super::KINDS`] name); `None` for a name no kind has.
pub fn of(kind: &str, s: &Scope) -> Option<Access> {
    compute::of(kind, s).or_else(|| stores::of(kind, s))
}
