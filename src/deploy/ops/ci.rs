//! `bosun-deploy ci github`: a GitHub Actions workflow that diffs a stack on pull
//! requests and applies it on pushes to one branch, with credentials from GitHub's
//! OpenID Connect provider, no long-lived key; and with `--create-role` the two roles
//! it assumes: `{stack}-deploy` (the stack's `policy`, trusted by pushes to the
//! branch) and `{stack}-diff` (its reads alone, trusted by pull requests).
//!
//! The roles live under the path `/bosun-ci/` and carry the tag `bosun:ci-role`, not
//! `bosun:stack`: the stack's own roles are listed by their path `/bosun/{stack}/`,
//! so `apply` never takes the role it runs as for one the file dropped, and the
//! deploy policy's IAM grants (on that path) cannot change these roles.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::policy::Needs;
use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::Ctx;
use crate::deploy::naming::{self, Where};
use crate::deploy::stack::Stack;

/// GitHub's OIDC issuer and the audience configure-aws-credentials asks for (GitHub
/// Docs, "Configuring OpenID Connect in Amazon Web Services").
pub const ISSUER: &str = "token.actions.githubusercontent.com";
pub const AUDIENCE: &str = "sts.amazonaws.com";
/// Where the CI roles live (not under the stack's `/bosun/{stack}/`).
pub const ROLE_PATH: &str = "/bosun-ci/";
/// The tag that makes a CI role the stack's.
pub const CI_TAG: &str = "bosun:ci-role";
/// A customer managed policy's size, whitespace not counted (IAM User Guide, "IAM and
/// AWS STS quotas": managed policy size 6,144 characters); a role's inline policies
/// together may hold 10,240, less than a stack of every type needs.
pub const MAX_POLICY: usize = 6144;

/// What `ci github` was asked.
pub struct Github {
    pub stack_file: PathBuf,
    pub stage: Option<String>,
    pub branch: String,
    pub repo: Option<String>,
    pub create_role: bool,
}

/// The workflow's file, in the repository that holds the stack file.
pub fn workflow_path(root: &Path) -> PathBuf {
    root.join(".github/workflows/bosun.yml")
}

/// The checkout the stack file is in: the nearest folder above it with `.git`.
pub fn repository_root(stack_file: &Path) -> Result<PathBuf> {
    let abs = std::fs::canonicalize(stack_file)
        .map_err(|e| DeployError::Usage(format!("cannot read {}: {e}", stack_file.display())))?;
    abs.ancestors()
        .skip(1)
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            DeployError::Usage(format!(
                "{} is not in a git checkout: the workflow goes into the repository's .github/workflows",
                stack_file.display()
            ))
        })
}

/// `OWNER/NAME` of a GitHub remote URL (`git@github.com:o/n.git`,
/// `https://github.com/o/n`), else `None`.
pub fn github_repo(url: &str) -> Option<String> {
    let rest = url
        .trim()
        .strip_prefix("git@github.com:")
        .or_else(|| url.trim().strip_prefix("https://github.com/"))
        .or_else(|| url.trim().strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let (owner, name) = rest.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (ok(owner) && ok(name)).then(|| format!("{owner}/{name}"))
}

/// The repository: `--repo`, else the checkout's `origin` when it is GitHub's.
pub fn repo_of(arg: Option<&str>, root: &Path) -> Result<String> {
    if let Some(r) = arg {
        return github_repo(&format!("https://github.com/{r}"))
            .ok_or_else(|| DeployError::Usage(format!("--repo {r}: expected OWNER/NAME")));
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["remote", "get-url", "origin"])
        .output();
    let url = out
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    github_repo(&url).ok_or_else(|| {
        DeployError::Usage(format!(
            "the checkout's origin ({}) is not a GitHub repository: give --repo OWNER/NAME",
            if url.trim().is_empty() {
                "none"
            } else {
                url.trim()
            }
        ))
    })
}

/// The roles' names for this stack (the stage included: `{stack}-{stage}-deploy`).
pub fn role_names(stack: &Stack) -> (String, String) {
    (
        naming::fit(format!("{}-deploy", stack.stack), naming::MAX_ROLE),
        naming::fit(format!("{}-diff", stack.stack), naming::MAX_ROLE),
    )
}

pub fn role_arn(at: &Where, name: &str) -> String {
    format!("arn:aws:iam::{}:role{ROLE_PATH}{name}", at.account)
}

/// The trust policy of a CI role: GitHub's provider in this account, for exactly
/// `subject` (`repo:O/N:ref:refs/heads/B` or `repo:O/N:pull_request`) and the STS
/// audience (IAM User Guide, "Create a role for OpenID Connect federation": the
/// `sub` and `aud` conditions).
pub fn trust(at: &Where, subject: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": format!("arn:aws:iam::{}:oidc-provider/{ISSUER}", at.account) },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": { "StringEquals": {
                format!("{ISSUER}:aud"): AUDIENCE,
                format!("{ISSUER}:sub"): subject,
            } }
        }]
    })
}

/// The subjects: pushes to `branch`, and pull requests (GitHub Docs, "About security
/// hardening with OpenID Connect": example subject claims).
pub fn subjects(repo: &str, branch: &str) -> (String, String) {
    (
        format!("repo:{repo}:ref:refs/heads/{branch}"),
        format!("repo:{repo}:pull_request"),
    )
}

/// `doc`'s statements in documents of at most [`MAX_POLICY`] characters each.
pub fn split(doc: &Value) -> Vec<Value> {
    let mut out: Vec<Vec<Value>> = vec![Vec::new()];
    let size = |s: &[Value]| {
        json!({ "Version": "2012-10-17", "Statement": s })
            .to_string()
            .len()
    };
    for st in doc["Statement"].as_array().into_iter().flatten() {
        let mut with = out.last().cloned().unwrap_or_default();
        with.push(st.clone());
        if size(&with) > MAX_POLICY && !with[..with.len() - 1].is_empty() {
            out.push(vec![st.clone()]);
        } else if let Some(last) = out.last_mut() {
            last.push(st.clone());
        }
    }
    out.into_iter()
        .map(|s| json!({ "Version": "2012-10-17", "Statement": s }))
        .collect()
}

/// The workflow: `diff` on pull requests into `branch` (the plan in the job summary),
/// `apply` on pushes to it; one run at a time per stack; bosun built from its source
/// at the version that wrote the file.
pub fn workflow(stack_rel: &str, stack: &Stack, at: &Where, branch: &str) -> String {
    let (deploy, diff) = role_names(stack);
    let version = env!("CARGO_PKG_VERSION");
    let stage = stack
        .stage
        .as_deref()
        .map(|s| format!("  BOSUN_STAGE: {s}\n"))
        .unwrap_or_default();
    let setup = |role: &str| {
        format!(
            r#"      - uses: actions/checkout@v5
      - uses: aws-actions/configure-aws-credentials@v6
        with:
          role-to-assume: {arn}
          aws-region: ${{{{ env.AWS_REGION }}}}
      - name: bosun {version}
        id: bosun
        uses: actions/cache@v5
        with:
          path: ~/.local/bin
          key: bosun-{version}-${{{{ runner.os }}}}-${{{{ runner.arch }}}}
      - name: Build bosun {version} from its source (the repository variable BOSUN_SOURCE)
        if: steps.bosun.outputs.cache-hit != 'true'
        env:
          BOSUN_SOURCE: ${{{{ vars.BOSUN_SOURCE }}}}
        run: |
          git clone --quiet --depth 1 --branch "v$BOSUN_VERSION" "$BOSUN_SOURCE" "$RUNNER_TEMP/bosun"
          "$RUNNER_TEMP/bosun/install.sh" "$HOME/.local"
      - run: echo "$HOME/.local/bin" >> "$GITHUB_PATH"
"#,
            arn = role_arn(at, role),
        )
    };
    format!(
        r#"# Written by bosun-deploy {version} (`bosun-deploy ci github`): a plan on each pull
# request into {branch}, an apply of {stack_rel} on each push to it. Credentials come
# from GitHub's OpenID Connect provider: role {deploy} for pushes, {diff} (reads
# only) for pull requests; no access key is stored. Set the repository variable
# BOSUN_SOURCE to the git URL bosun is built from (tag v{version}).
name: bosun

on:
  pull_request:
    branches: [{branch}]
  push:
    branches: [{branch}]

permissions:
  contents: read
  id-token: write

concurrency:
  group: bosun-{stack}
  cancel-in-progress: false

env:
  AWS_REGION: {region}
  BOSUN_VERSION: {version}
{stage}
jobs:
  diff:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-24.04
    steps:
{diff_setup}      - name: bosun-deploy diff
        run: |
          set +e
          bosun-deploy diff --stack "{stack_rel}" > "$RUNNER_TEMP/plan.txt"
          code=$?
          {{ echo '### bosun-deploy diff'; echo '```'; cat "$RUNNER_TEMP/plan.txt"; echo '```'; }} >> "$GITHUB_STEP_SUMMARY"
          # 0: no change, 1: changes; anything else failed.
          [ "$code" -le 1 ]

  apply:
    if: github.event_name == 'push'
    runs-on: ubuntu-24.04
    steps:
{deploy_setup}      - name: bosun-deploy apply
        run: bosun-deploy apply --stack "{stack_rel}"
"#,
        stack = stack.stack,
        region = at.region,
        diff_setup = setup(&diff),
        deploy_setup = setup(&deploy),
    )
}

/// Write the workflow, never over another: the same text again is no change.
pub fn write_workflow(root: &Path, text: &str) -> Result<&'static str> {
    let path = workflow_path(root);
    match std::fs::read_to_string(&path) {
        Ok(have) if have == text => return Ok("unchanged"),
        Ok(_) => {
            return Err(DeployError::Usage(format!(
                "{} exists and differs from what bosun-deploy would write: it is never overwritten (move it away to write it again)",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(DeployError::Usage(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    }
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, text))
        .map_err(|e| DeployError::Usage(format!("cannot write {}: {e}", path.display())))?;
    Ok("written")
}

/// The two roles, each with its trust and its policy (as managed policies of at most
/// [`MAX_POLICY`] characters, named by their content, so a changed policy is a new
/// one attached before the old is detached and deleted); GitHub's provider where the
/// account has none. What exists and is not the stack's is never changed.
pub async fn create_roles(
    ctx: &Ctx,
    stack: &Stack,
    at: &Where,
    repo: &str,
    branch: &str,
    needs: &Needs,
) -> Result<Vec<String>> {
    provider(ctx, at).await?;
    let (deploy, diff) = role_names(stack);
    let (push, pull) = subjects(repo, branch);
    let mut said = Vec::new();
    // The deploy role may also ask IAM's policy simulator about itself, so apply and
    // delete find a missing permission before any change (ops/permissions.rs).
    let mut deploying = needs.document();
    if let Some(s) = deploying["Statement"].as_array_mut() {
        s.push(json!({
            "Effect": "Allow",
            "Action": ["iam:SimulatePrincipalPolicy"],
            "Resource": role_arn(at, &deploy),
        }));
    }
    for (role, subject, doc) in [
        (&deploy, &push, deploying),
        (&diff, &pull, needs.reads().document()),
    ] {
        super::ci_roles::ensure_role(
            ctx,
            stack,
            role,
            &trust(at, subject),
            &split(&doc),
            &mut said,
        )
        .await?;
    }
    Ok(said)
}

/// GitHub's OIDC provider: made with the STS audience when the account lacks it;
/// one that exists is used as it is (IAM User Guide, "Create an OpenID Connect (OIDC)
/// identity provider in IAM": IAM trusts GitHub's certificate authorities, so no
/// thumbprint is needed).
async fn provider(ctx: &Ctx, at: &Where) -> Result<()> {
    let arn = format!("arn:aws:iam::{}:oidc-provider/{ISSUER}", at.account);
    let have = ctx
        .aws
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await;
    if absent_on(
        have,
        &["NoSuchEntity"],
        "IAM GetOpenIDConnectProvider",
        &arn,
    )?
    .is_some()
    {
        return Ok(());
    }
    eprintln!(
        "+ create OpenID Connect provider {ISSUER} (GitHub Actions' tokens, audience {AUDIENCE})"
    );
    ctx.aws
        .iam
        .create_open_id_connect_provider()
        .url(format!("https://{ISSUER}"))
        .client_id_list(AUDIENCE)
        .tags(super::ci_roles::ci_tag(&ctx.stack)?)
        .send()
        .await
        .map_err(failed("IAM CreateOpenIDConnectProvider", ISSUER))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_remotes_name_their_repository_and_nothing_else_does() {
        for url in [
            "git@github.com:acme/shop.git",
            "https://github.com/acme/shop",
            "https://github.com/acme/shop.git\n",
            "ssh://git@github.com/acme/shop.git",
        ] {
            assert_eq!(github_repo(url).as_deref(), Some("acme/shop"), "{url}");
        }
        for url in [
            "https://gitlab.com/acme/shop",
            "git@github.com:acme",
            "",
            "https://github.com/a b/c",
        ] {
            assert_eq!(github_repo(url), None, "{url}");
        }
    }

    #[test]
    fn a_policy_is_split_into_documents_iam_takes_and_loses_no_statement() {
        let statements: Vec<Value> = (0..200)
            .map(|i| json!({ "Effect": "Allow", "Action": [format!("sqs:GetQueueAttributes{i}")], "Resource": format!("arn:aws:sqs:eu-west-1:123456789012:queue-{i}") }))
            .collect();
        let docs = split(&json!({ "Version": "2012-10-17", "Statement": statements }));
        assert!(docs.len() > 1);
        let mut back = Vec::new();
        for d in &docs {
            assert!(d.to_string().len() <= MAX_POLICY, "{}", d.to_string().len());
            back.extend(d["Statement"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(back, statements);
    }
}
