//! The verbs that plan and change (`diff`, `apply`, `status`, `delete`), as the
//! binary dispatches them: what they print, the lock they hold while they change
//! anything, what they refuse to lose.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::images::Mode;
use super::{connect, guard, images, lock, plan, plan_delete, rendered, status, wait};
use crate::deploy::components::{self, Target};
use crate::deploy::engine::error::{exit, DeployError, Result};
use crate::deploy::engine::plan::{Change, Plan};
use crate::deploy::engine::{self, Ctx, Kind, Node, Reconciled};
use crate::deploy::images::buildpack;
use crate::deploy::naming;
use crate::deploy::resources::{service::Service, Spec};
use crate::deploy::stack::Stack;

/// How a plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// For people: `+ create`, `~ update` with the changed fields, `-/+ replace`,
    /// `- delete`.
    Text,
    /// For scripts: the plan (and what was done) as one JSON document.
    Json,
}

/// What every verb that changes something is told about the lock and about data.
#[derive(Debug, Clone)]
pub struct Safety {
    /// Wait this long for another run's lock (0: refuse at once).
    pub wait_lock: Duration,
    /// Break the lock with this id first (a run that died left it).
    pub force_unlock: Option<String>,
    /// Delete queues that hold messages.
    pub allow_data_loss: bool,
}

pub fn print_plan(plan: &Plan, output: Output) {
    match output {
        Output::Text => print!("{plan}"),
        Output::Json => println!("{}", serde_json::to_string_pretty(plan).unwrap_or_default()),
    }
}

/// Execute a plan with a line per finished change (with its own duration), then the
/// count.
async fn execute(
    ctx: &Ctx,
    nodes: &[Node<Spec>],
    r: &Reconciled<Spec>,
    output: Output,
    printed: bool,
) -> Result<()> {
    if output == Output::Text && !printed {
        print_plan(&r.plan, output);
    }
    let mut progress = |c: &Change, t: Duration| {
        eprintln!(
            "  done {} {} {} ({:.1}s)",
            c.symbol(),
            c.kind,
            c.name,
            t.as_secs_f64()
        );
    };
    let done = engine::execute(ctx, nodes, r, &mut progress).await?;
    match output {
        Output::Text => println!("applied: {done} change{}", if done == 1 { "" } else { "s" }),
        Output::Json => println!("{}", serde_json::json!({ "plan": r.plan, "applied": done })),
    }
    Ok(())
}

/// `render`: the exact API inputs as JSON, and the Dockerfiles auto-packaging
/// generates; no AWS call. The account is the stack's `account:` or `AWS_ACCOUNT_ID`;
/// without either, ARNs show the placeholder `ACCOUNT_ID` (never a made-up number).
pub fn render(file: &Path, stack: &Stack) -> Result<u8> {
    let account = stack
        .account
        .clone()
        .or_else(|| std::env::var("AWS_ACCOUNT_ID").ok())
        .unwrap_or_else(|| {
            eprintln!(
                "bosun-deploy: no account (set `account:` or AWS_ACCOUNT_ID): ARNs show ACCOUNT_ID"
            );
            "ACCOUNT_ID".into()
        });
    let region = super::region_of(stack).unwrap_or_else(|| "us-east-1".into());
    let target = Target::offline(&naming::Where { region, account });
    let mut out = components::render(stack, &target).to_json(stack, &target);
    // Auto-packaged resources: the Dockerfile bosun-deploy generates, to take over.
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut generated = serde_json::Map::new();
    for (name, res) in &stack.resources {
        let Some(ctr) = res.container().filter(|c| c.packaging.is_buildpack()) else {
            continue;
        };
        let g = buildpack::generate(dir, ctr)
            .map_err(|e| DeployError::Invalid(format!("{name}: {e}")))?;
        generated.insert(
            name.clone(),
            serde_json::json!({ "language": g.language, "context": g.context, "dockerfile": g.dockerfile }),
        );
    }
    if !generated.is_empty() {
        out["dockerfiles"] = serde_json::Value::Object(generated);
    }
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(exit::OK)
}

/// `diff`: the plan, queue deletions that would lose messages marked; exit 1 when
/// there are changes.
pub async fn diff(file: &Path, stack: &Stack, bosun: &Path, output: Output) -> Result<u8> {
    let ctx = connect(stack).await?;
    let images = images(&ctx, file, stack, bosun, Mode::Build, None).await?;
    let (_, mut r) = plan(&ctx, stack, &images).await?;
    guard::mark_data_loss(&ctx, &mut r).await?;
    print_plan(&r.plan, output);
    Ok(if r.plan.changes.is_empty() {
        exit::OK
    } else {
        exit::CHANGES
    })
}

/// `apply`: plan; with changes, take the lock, plan again under it, refuse to lose
/// messages, execute, wait for the services; the lock is released at the end,
/// failure included. A plan with nothing to change takes no lock.
pub async fn apply(
    file: &Path,
    stack: &Stack,
    bosun: &Path,
    output: Output,
    wait_for: Option<Duration>,
    safety: &Safety,
) -> Result<u8> {
    let (interrupts, ctx) = connect_to_change(stack, safety).await?;
    let slot = lock::Slot::new("apply", safety.wait_lock)
        .checking(super::permissions::Check::new(stack, &ctx, false));
    let work = async {
        let images = images(&ctx, file, stack, bosun, Mode::Push, Some(&slot)).await?;
        super::ensure_network(&ctx, stack, &slot).await?;
        let (mut nodes, mut r) = plan(&ctx, stack, &images).await?;
        if r.plan.changes.is_empty() {
            return execute(&ctx, &nodes, &r, output, false)
                .await
                .map(|_| exit::OK);
        }
        if !slot.held() {
            slot.take(&ctx).await?;
            ctx.forget_reads();
            (nodes, r) = plan(&ctx, stack, &images).await?;
        }
        guard::refuse_data_loss(&ctx, &mut r, safety.allow_data_loss).await?;
        execute(&ctx, &nodes, &r, output, false).await?;
        let rolled = r.plan.changes.iter().any(|c| c.kind == Service::KIND);
        if let (Some(timeout), true) = (wait_for, rolled) {
            wait::wait(&ctx.aws, &nodes, timeout).await?;
        }
        Ok(exit::OK)
    };
    slot.run(&ctx, &interrupts, work).await
}

/// `status`: whether AWS matches the file (the same reads as `diff`, the deployed
/// images standing in for the built ones), then what runs.
pub async fn status(file: &Path, stack: &Stack) -> Result<u8> {
    let ctx = connect(stack).await?;
    let images = images(&ctx, file, stack, Path::new("bosun"), Mode::Deployed, None).await?;
    let r = engine::reconcile(&ctx, &rendered(&ctx, stack, &images).await?.nodes).await?;
    match r.plan.changes.len() {
        0 => println!("stack {}: AWS matches the file", stack.stack),
        n => println!(
            "stack {}: {n} change{} pending (bosun-deploy diff shows them)",
            stack.stack,
            if n == 1 { "" } else { "s" }
        ),
    }
    print!("{}", status::status(&ctx.aws, stack).await?);
    Ok(exit::OK)
}

/// `policy`: the IAM policy `apply`, `diff`, `status` and `delete` of this stack need,
/// for the file's account (else the caller's: STS GetCallerIdentity, which needs no
/// permission) and region.
pub async fn policy(stack: &Stack) -> Result<u8> {
    let at = policy_scope(stack).await?;
    let doc = super::policy::needs(stack, &at).document();
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).map_err(|e| DeployError::Internal(e.to_string()))?
    );
    Ok(exit::OK)
}

/// `ci github`: the workflow (never over another), and with `create_role` the roles
/// it assumes; their ARNs printed.
pub async fn ci_github(
    file: &Path,
    stack: &Stack,
    branch: &str,
    repo: Option<&str>,
    create_role: bool,
) -> Result<u8> {
    use super::ci;
    if branch.is_empty() || branch.contains(['*', ' ', ':']) {
        return Err(DeployError::Usage(format!(
            "--branch {branch:?}: one branch name"
        )));
    }
    let root = ci::repository_root(file)?;
    let repo = ci::repo_of(repo, &root)?;
    // The roles' account is the caller's; without roles to make, the file's will do.
    let ctx = match create_role {
        true => Some(connect(stack).await?),
        false => None,
    };
    let at = match &ctx {
        Some(ctx) => ctx.at(),
        None => policy_scope(stack).await?,
    };
    let abs = std::fs::canonicalize(file).map_err(|e| DeployError::Usage(e.to_string()))?;
    let rel = abs
        .strip_prefix(&root)
        .unwrap_or(&abs)
        .display()
        .to_string();
    let text = ci::workflow(&rel, stack, &at, branch);
    let done = ci::write_workflow(&root, &text)?;
    println!(
        "{}: {done} (diff on pull requests into {branch} of {repo}, apply on pushes to it)",
        ci::workflow_path(&root).display()
    );
    let (deploy, diff) = ci::role_names(stack);
    if let Some(ctx) = ctx {
        let needs = super::policy::needs(stack, &at);
        for arn in ci::create_roles(&ctx, stack, &at, &repo, branch, &needs).await? {
            println!("role {arn}");
        }
    } else {
        println!(
            "the workflow assumes {} and {}: `bosun-deploy ci github --create-role` makes them",
            ci::role_arn(&at, &deploy),
            ci::role_arn(&at, &diff)
        );
    }
    Ok(exit::OK)
}

/// Where a policy's ARNs point: the file's account, or the caller's; the file's region,
/// or the environment's (never guessed).
pub async fn policy_scope(stack: &Stack) -> Result<naming::Where> {
    let region = super::region_of(stack);
    let account = match &stack.account {
        Some(a) => a.clone(),
        None => super::connect(stack).await?.account.clone(),
    };
    let region = match region {
        Some(r) => r,
        None => {
            return Err(DeployError::Usage(
                "no region: set `region:` in the stack file or AWS_REGION".into(),
            ))
        }
    };
    Ok(naming::Where { region, account })
}

/// Whether `delete` may go on: `--yes`, or a person on a terminal who says so.
pub fn delete_allowed_to_ask(yes: bool) -> Result<()> {
    if yes || std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(DeployError::Usage(
        "delete deletes everything the stack owns: pass --yes to confirm (its input is not a terminal to ask on)".into(),
    ))
}

/// `delete`: the plan of an empty file, under the lock; asked on a terminal unless
/// `--yes`.
pub async fn delete(stack: &Stack, output: Output, yes: bool, safety: &Safety) -> Result<u8> {
    delete_allowed_to_ask(yes)?;
    let (interrupts, ctx) = connect_to_change(stack, safety).await?;
    let (nodes, r) = plan_delete(&ctx).await?;
    if r.plan.changes.is_empty() {
        execute(&ctx, &nodes, &r, output, false).await?;
        super::ci_roles::remove_roles(&ctx, stack).await?;
        return Ok(exit::OK);
    }
    let slot = lock::Slot::new("delete", safety.wait_lock)
        .checking(super::permissions::Check::new(stack, &ctx, true));
    let work = async {
        slot.take(&ctx).await?;
        ctx.forget_reads();
        let (nodes, mut r) = plan_delete(&ctx).await?;
        guard::refuse_data_loss(&ctx, &mut r, safety.allow_data_loss).await?;
        let mut printed = false;
        if !yes {
            print_plan(&r.plan, Output::Text);
            printed = output == Output::Text;
            let question = format!(
                "Delete these {} resources of stack {} in account {} ({})? Type yes: ",
                r.plan.changes.len(),
                stack.stack,
                ctx.account,
                ctx.region
            );
            // Read on a thread of its own, so Ctrl-C at the question still stops the
            // verb and releases the lock.
            let yes = tokio::task::spawn_blocking(move || confirm(&question))
                .await
                .unwrap_or(false);
            if !yes {
                return Err(DeployError::Usage(
                    "not confirmed: nothing was deleted".into(),
                ));
            }
        }
        execute(&ctx, &nodes, &r, output, printed).await?;
        super::ci_roles::remove_roles(&ctx, stack).await?;
        Ok(exit::OK)
    };
    slot.run(&ctx, &interrupts, work).await
}

/// The start of a verb that may change the stack: Ctrl-C and SIGTERM taken over
/// (before the first call, so every thread inherits it), connected, and the lock a
/// dead run left broken when `--force-unlock` names it.
pub(super) async fn connect_to_change(
    stack: &Stack,
    safety: &Safety,
) -> Result<(lock::Interrupts, Ctx)> {
    let interrupts = lock::Interrupts::take()?;
    let ctx = connect(stack).await?;
    if let Some(id) = &safety.force_unlock {
        lock::force_unlock(&ctx, id).await?;
    }
    Ok((interrupts, ctx))
}

/// Ask on the terminal; only `yes` is yes.
fn confirm(question: &str) -> bool {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}

/// `--bosun`, else the static `bosun` beside this program (where `install.sh` puts
/// it), else, for a bosun-deploy run from a checkout's `target/<profile>/`, the
/// checkout's `target/static/bosun` (`docker/build-static.sh`), rather than the
/// dynamically linked bosun a `cargo build` leaves beside it. With none of them, the
/// one beside this program: the image build then refuses it, saying what to run.
pub fn bosun_path(given: Option<PathBuf>) -> PathBuf {
    match given {
        Some(p) => p,
        None => default_bosun(std::env::current_exe().ok()),
    }
}

/// [`bosun_path`]'s default, for bosun-deploy at `exe`.
fn default_bosun(exe: Option<PathBuf>) -> PathBuf {
    let beside = exe
        .as_ref()
        .and_then(|p| p.parent().map(|d| d.join("bosun")))
        .unwrap_or_else(|| PathBuf::from("bosun"));
    let checkout = exe
        .as_ref()
        .and_then(|p| p.parent()?.parent())
        .filter(|t| t.file_name().is_some_and(|n| n == "target"))
        .map(|t| t.join("static").join("bosun"));
    [Some(beside.clone()), checkout]
        .into_iter()
        .flatten()
        .find(|p| is_static(p))
        .unwrap_or(beside)
}

/// Whether `path` is a statically linked executable (its headers say so).
fn is_static(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .is_ok()
        && crate::deploy::images::inject::executable(&head).is_ok_and(|e| !e.dynamic)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The headers of a 64-bit x86-64 ELF executable with one program header:
    /// `PT_INTERP` (dynamically linked) or `PT_LOAD`.
    fn elf(dynamic: bool) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[18] = 62;
        b[32] = 64; // phoff
        b[54] = 56; // phentsize
        b[56] = 1; // phnum
        b[64] = if dynamic { 3 } else { 1 };
        b
    }

    #[test]
    fn the_default_bosun_is_a_static_one() {
        let root = std::env::temp_dir().join(format!("bosun-path-{}", std::process::id()));
        let debug = root.join("target/debug");
        let stat = root.join("target/static");
        std::fs::create_dir_all(&debug).unwrap();
        std::fs::create_dir_all(&stat).unwrap();
        let exe = Some(debug.join("bosun-deploy"));
        // Beside a `cargo build`: its dynamic bosun, then the checkout's static one.
        std::fs::write(debug.join("bosun"), elf(true)).unwrap();
        assert_eq!(
            default_bosun(exe.clone()),
            debug.join("bosun"),
            "none static: the one beside, refused later"
        );
        std::fs::write(stat.join("bosun"), elf(false)).unwrap();
        assert_eq!(default_bosun(exe.clone()), stat.join("bosun"));
        // Installed: the static bosun beside bosun-deploy comes first.
        std::fs::write(debug.join("bosun"), elf(false)).unwrap();
        assert_eq!(default_bosun(exe), debug.join("bosun"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
