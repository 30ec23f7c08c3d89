//! The stack's lock: held in AWS for the length of a verb that changes something, so
//! two applies of one stack never interleave. It is an SSM parameter under the
//! stack's name, created without overwrite: SSM refuses a second PutParameter of an
//! existing name with `ParameterAlreadyExists` unless `Overwrite` is true (SSM API
//! reference, PutParameter), which makes the create the test-and-set. Its value says
//! who holds it and since when. A verb with nothing to change takes none.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::deploy::engine::error::{absent_on, failed, DeployError, Result};
use crate::deploy::engine::Ctx;
use crate::deploy::naming::{self, STACK_TAG};

/// How often a verb waiting for the lock (`--wait-lock`) asks again.
const RETRY: Duration = Duration::from_secs(2);

/// The lock this run holds.
#[derive(Debug)]
pub struct Held {
    name: String,
    pub id: String,
}

/// Who holds a lock, as its value says.
fn describe_holder(value: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(value).unwrap_or_default();
    let id = v["id"].as_str().unwrap_or("?").to_owned();
    let text = format!(
        "{} by {} since {} (lock id {id})",
        v["verb"].as_str().unwrap_or("?"),
        v["who"].as_str().unwrap_or("?"),
        v["since"].as_str().unwrap_or("?"),
    );
    (id, text)
}

/// A lock id no other run will make: the time, this process and host.
fn new_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    naming::short_hash(&format!(
        "{}-{}-{}",
        now.as_nanos(),
        std::process::id(),
        host.trim()
    ))
}

/// Take the stack's lock for `verb`, waiting up to `wait` for another holder to let
/// go; a holder that is still there then is [`DeployError::Locked`] (exit 4).
pub async fn take(ctx: &Ctx, verb: &str, wait: Duration) -> Result<Held> {
    let name = naming::lock_parameter(&ctx.stack);
    let id = new_id();
    let who = format!(
        "{}@{} (pid {})",
        std::env::var("USER").unwrap_or_else(|_| "?".into()),
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim(),
        std::process::id()
    );
    let since = aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    let value = json!({ "id": id, "who": who, "since": since, "verb": verb }).to_string();
    let deadline = Instant::now() + wait;
    loop {
        let out = ctx
            .aws
            .ssm
            .put_parameter()
            .name(&name)
            .description("bosun-deploy: held while a verb changes this stack")
            .value(&value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(false)
            .tags(
                aws_sdk_ssm::types::Tag::builder()
                    .key(STACK_TAG)
                    .value(&ctx.stack)
                    .build()
                    .map_err(DeployError::request("the lock's tag"))?,
            )
            .send()
            .await;
        let err = match out {
            Ok(_) => return Ok(Held { name, id }),
            Err(e) => failed("SSM PutParameter", &name)(e),
        };
        if err.code() != Some("ParameterAlreadyExists") {
            return Err(err);
        }
        let holder = read(ctx, &name).await?;
        let Some(value) = holder else {
            // Released meanwhile: try again at once.
            continue;
        };
        let (held_id, text) = describe_holder(&value);
        if Instant::now() >= deadline {
            return Err(DeployError::Locked {
                stack: ctx.stack.clone(),
                holder: text,
                id: held_id,
            });
        }
        eprintln!(
            "bosun-deploy: waiting for the lock of stack {}: {text}",
            ctx.stack
        );
        tokio::time::sleep(RETRY.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// The lock's value, or `None` when there is none.
async fn read(ctx: &Ctx, name: &str) -> Result<Option<String>> {
    let out = ctx.aws.ssm.get_parameter().name(name).send().await;
    Ok(
        absent_on(out, &["ParameterNotFound"], "SSM GetParameter", name)?
            .and_then(|o| o.parameter().and_then(|p| p.value()).map(str::to_owned)),
    )
}

/// Delete the lock if it holds `id` (the holder's, or the one `--force-unlock`
/// names): never another run's.
async fn delete_if(ctx: &Ctx, name: &str, id: &str) -> Result<bool> {
    let Some(value) = read(ctx, name).await? else {
        return Ok(false);
    };
    if describe_holder(&value).0 != id {
        return Ok(false);
    }
    let out = ctx.aws.ssm.delete_parameter().name(name).send().await;
    absent_on(out, &["ParameterNotFound"], "SSM DeleteParameter", name)?;
    Ok(true)
}

/// Let go of the lock this run holds (failure included); a release that fails says
/// how to break the lock by hand.
pub async fn release(ctx: &Ctx, held: Held) {
    if let Err(e) = delete_if(ctx, &held.name, &held.id).await {
        eprintln!(
            "bosun-deploy: the lock of stack {} could not be released ({e}): break it with --force-unlock {}",
            ctx.stack, held.id
        );
    }
}

/// `--force-unlock ID`: break the lock a run that died left, if it is that one.
pub async fn force_unlock(ctx: &Ctx, id: &str) -> Result<()> {
    let name = naming::lock_parameter(&ctx.stack);
    if delete_if(ctx, &name, id).await? {
        eprintln!("bosun-deploy: lock {id} of stack {} broken", ctx.stack);
        Ok(())
    } else {
        Err(DeployError::Usage(format!(
            "stack {} holds no lock with id {id}: nothing was broken",
            ctx.stack
        )))
    }
}

/// The lock of one verb's run: taken when the run first has something to change,
/// released at its end.
pub struct Slot {
    verb: &'static str,
    wait: Duration,
    held: std::cell::RefCell<Option<Held>>,
    /// The permissions to ask IAM's simulator about before the lock is taken.
    check: Option<super::permissions::Check>,
}

impl Slot {
    pub fn new(verb: &'static str, wait: Duration) -> Slot {
        Slot {
            verb,
            wait,
            held: std::cell::RefCell::new(None),
            check: None,
        }
    }

    /// Before the lock (a run's first change), ask whether the caller may make the
    /// calls in `check` ([`super::permissions`]).
    pub fn checking(mut self, check: super::permissions::Check) -> Slot {
        self.check = Some(check);
        self
    }

    pub fn held(&self) -> bool {
        self.held.borrow().is_some()
    }

    /// Take the lock unless this run holds it already.
    pub async fn take(&self, ctx: &Ctx) -> Result<()> {
        if self.held() {
            return Ok(());
        }
        if let Some(check) = &self.check {
            super::permissions::check(ctx, check).await?;
        }
        let held = take(ctx, self.verb, self.wait).await?;
        *self.held.borrow_mut() = Some(held);
        Ok(())
    }

    /// Run a verb's `work`, stopped by Ctrl-C or SIGTERM; then let go of the lock,
    /// however the work ended.
    pub async fn run<F>(&self, ctx: &Ctx, interrupts: &Interrupts, work: F) -> Result<u8>
    where
        F: std::future::Future<Output = Result<u8>>,
    {
        let result = tokio::select! {
            r = work => r,
            sig = interrupts.wait() => Err(DeployError::Interrupted(sig)),
        };
        self.release(ctx).await;
        result
    }

    /// Let go of it, if this run took it.
    pub async fn release(&self, ctx: &Ctx) {
        let held = self.held.borrow_mut().take();
        if let Some(held) = held {
            release(ctx, held).await;
        }
    }
}

/// Ctrl-C (SIGINT) or SIGTERM while a verb that takes the lock runs: the signals are
/// blocked and read from a signalfd, so the verb stops its calls, lets go of the lock,
/// and exits 130 (a run killed with SIGKILL leaves the lock: `--force-unlock` breaks
/// it). Made before the verb's first call, so every thread it starts inherits the
/// mask.
pub struct Interrupts {
    fd: tokio::io::unix::AsyncFd<nix::sys::signalfd::SignalFd>,
}

impl Interrupts {
    pub fn take() -> Result<Interrupts> {
        use nix::sys::signal::{SigSet, Signal};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let io = |e: nix::Error| DeployError::Internal(format!("signals: {e}"));
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGTERM);
        mask.thread_block().map_err(io)?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(io)?;
        // SAFETY: the SignalFd owns a valid descriptor, and nothing replaces or closes
        // it while the AsyncFd holds it (it is closed when both are dropped).
        let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }
            .map_err(|e| DeployError::Internal(format!("signals: {e}")))?;
        Ok(Interrupts { fd })
    }

    /// Resolves with the signal's name when one arrives.
    pub async fn wait(&self) -> &'static str {
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                return std::future::pending().await;
            };
            match ready.get_inner().read_signal() {
                Ok(Some(info)) => {
                    return if info.ssi_signo == nix::libc::SIGTERM as u32 {
                        "SIGTERM"
                    } else {
                        "SIGINT"
                    }
                }
                Ok(None) => ready.clear_ready(),
                Err(_) => return std::future::pending().await,
            }
        }
    }
}
