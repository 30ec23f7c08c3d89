//! CPU and memory of the container from its cgroup: v2 (`cpu.stat`, `cpu.max`,
//! `memory.current`, `memory.stat`, `memory.max`) or v1 (`cpuacct.usage`,
//! `cpu.cfs_quota_us`/`cpu.cfs_period_us`, `memory.usage_in_bytes`, `memory.stat`,
//! `memory.limit_in_bytes`), found from `/proc/self/cgroup` and `/proc/self/mountinfo`.
//! A hybrid host (v1 controllers beside an empty v2 hierarchy) uses v1 for each
//! controller the v2 hierarchy does not have. Every path is under a root directory, so
//! tests read fixture trees laid out as the kernel documents them.

use std::fs;
use std::path::{Path, PathBuf};

/// Where one controller's files are, and in which format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dir {
    V2(PathBuf),
    V1(PathBuf),
}

/// The cgroup directories of the process (per controller).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cgroup {
    pub cpu: Option<Dir>,
    pub cpuacct: Option<Dir>,
    pub memory: Option<Dir>,
}

/// A mount of a cgroup hierarchy: its mount point, the cgroup path of its root, and
/// (v1) the controllers it carries.
#[derive(Debug)]
struct Mount {
    point: PathBuf,
    root: String,
    v2: bool,
    controllers: Vec<String>,
}

fn mounts(root: &Path) -> Vec<Mount> {
    let Ok(text) = fs::read_to_string(root.join("proc/self/mountinfo")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        // id parent major:minor root mountpoint options [optional...] - fstype source superopts
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let fstype = r[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let controllers = r[2].split(',').map(str::to_owned).collect();
        out.push(Mount {
            point: root.join(l[4].trim_start_matches('/')),
            root: l[3].to_owned(),
            v2: fstype == "cgroup2",
            controllers,
        });
    }
    out
}

/// `/sys/fs/cgroup/...` directory of cgroup `path` inside `mount`.
fn join(mount: &Mount, path: &str) -> PathBuf {
    let rel = if mount.root == "/" {
        path
    } else {
        // The mount shows a subtree (a container's own cgroup, say): cut its root off.
        path.strip_prefix(mount.root.as_str()).unwrap_or("")
    };
    mount.point.join(rel.trim_start_matches('/'))
}

impl Cgroup {
    /// Find the process's cgroup directories under `root` (`/` in production).
    pub fn detect(root: &Path) -> Cgroup {
        let Ok(text) = fs::read_to_string(root.join("proc/self/cgroup")) else {
            return Cgroup::default();
        };
        let mounts = mounts(root);
        let mut cg = Cgroup::default();
        // v2 first: "0::/path"; usable for a controller only if its hierarchy has it.
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && ctrls.is_empty() {
                if let Some(m) = mounts.iter().find(|m| m.v2) {
                    let dir = join(m, path);
                    let available = fs::read_to_string(dir.join("cgroup.controllers"))
                        .or_else(|_| fs::read_to_string(m.point.join("cgroup.controllers")))
                        .unwrap_or_default();
                    let has = |c: &str| available.split_whitespace().any(|x| x == c);
                    if has("cpu") {
                        cg.cpu = Some(Dir::V2(dir.clone()));
                        cg.cpuacct = Some(Dir::V2(dir.clone()));
                    }
                    if has("memory") {
                        cg.memory = Some(Dir::V2(dir));
                    }
                }
            }
        }
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            for ctrl in ctrls.split(',').filter(|c| !c.is_empty()) {
                let slot = match ctrl {
                    "cpu" => &mut cg.cpu,
                    "cpuacct" => &mut cg.cpuacct,
                    "memory" => &mut cg.memory,
                    _ => continue,
                };
                if slot.is_some() {
                    continue;
                }
                if let Some(m) = mounts
                    .iter()
                    .find(|m| !m.v2 && m.controllers.iter().any(|c| c == ctrl))
                {
                    *slot = Some(Dir::V1(join(m, path)));
                }
            }
        }
        cg
    }

    /// Total CPU time used by the cgroup so far, in microseconds.
    pub fn cpu_usage_usec(&self) -> Option<u64> {
        match self.cpuacct.as_ref()? {
            Dir::V2(d) => stat_value(&d.join("cpu.stat"), "usage_usec"),
            Dir::V1(d) => read_u64(&d.join("cpuacct.usage")).map(|ns| ns / 1000),
        }
    }

    /// The CPU limit in cores (quota ÷ period), `None` when unlimited.
    pub fn cpu_limit_cores(&self) -> Option<f64> {
        match self.cpu.as_ref()? {
            Dir::V2(d) => {
                let text = fs::read_to_string(d.join("cpu.max")).ok()?;
                let mut it = text.split_whitespace();
                let quota = it.next()?;
                let period: f64 = it.next().and_then(|p| p.parse().ok()).unwrap_or(100_000.0);
                if quota == "max" {
                    return None;
                }
                Some(quota.parse::<f64>().ok()? / period)
            }
            Dir::V1(d) => {
                let quota: i64 = fs::read_to_string(d.join("cpu.cfs_quota_us"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                let period = read_u64(&d.join("cpu.cfs_period_us"))? as f64;
                if quota <= 0 || period <= 0.0 {
                    return None;
                }
                Some(quota as f64 / period)
            }
        }
    }

    /// Memory in use, as the ECS agent counts it for the container: with cgroup v2,
    /// usage minus the inactive file cache (what the kernel can drop at once, as
    /// `docker stats` counts it); with cgroup v1, usage minus the whole page `cache`
    /// (the agent's v1 figure is Docker's `usage - stats.cache`), so bosun's
    /// MemoryUtilization reads as ECS's does on the same host.
    pub fn memory_used_bytes(&self) -> Option<u64> {
        let (usage, reclaimable) = match self.memory.as_ref()? {
            Dir::V2(d) => (
                read_u64(&d.join("memory.current"))?,
                stat_value(&d.join("memory.stat"), "inactive_file").unwrap_or(0),
            ),
            Dir::V1(d) => (
                read_u64(&d.join("memory.usage_in_bytes"))?,
                stat_value(&d.join("memory.stat"), "cache").unwrap_or(0),
            ),
        };
        Some(usage.saturating_sub(reclaimable))
    }

    /// Processes of the cgroup the kernel's OOM killer has killed (v2 `memory.events`,
    /// v1 `memory.oom_control`: `oom_kill N`), `None` when the kernel does not say.
    pub fn oom_kills(&self) -> Option<u64> {
        match self.memory.as_ref()? {
            Dir::V2(d) => stat_value(&d.join("memory.events"), "oom_kill"),
            Dir::V1(d) => stat_value(&d.join("memory.oom_control"), "oom_kill"),
        }
    }

    /// The memory limit in bytes, `None` when unlimited.
    pub fn memory_limit_bytes(&self) -> Option<u64> {
        match self.memory.as_ref()? {
            Dir::V2(d) => {
                let text = fs::read_to_string(d.join("memory.max")).ok()?;
                let t = text.trim();
                if t == "max" {
                    None
                } else {
                    t.parse().ok()
                }
            }
            // v1 says "unlimited" with a huge number (PAGE_COUNTER_MAX pages).
            Dir::V1(d) => read_u64(&d.join("memory.limit_in_bytes")).filter(|v| *v < (1 << 62)),
        }
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file such as `cpu.stat` or `memory.stat`.
fn stat_value(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bosun-cgroup-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn v2_fixture() {
        let r = tmp("v2");
        write(&r, "proc/self/cgroup", "0::/ecs/task1\n");
        write(
            &r,
            "proc/self/mountinfo",
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        write(
            &r,
            "sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        );
        let d = "sys/fs/cgroup/ecs/task1";
        write(
            &r,
            &format!("{d}/cpu.stat"),
            "usage_usec 5000000\nuser_usec 4000000\nsystem_usec 1000000\n",
        );
        write(&r, &format!("{d}/cpu.max"), "50000 100000\n");
        write(&r, &format!("{d}/memory.current"), "209715200\n");
        write(
            &r,
            &format!("{d}/memory.stat"),
            "anon 100\nfile 200\ninactive_file 104857600\nactive_file 1\n",
        );
        write(&r, &format!("{d}/memory.max"), "419430400\n");
        let cg = Cgroup::detect(&r);
        assert_eq!(cg.cpu, Some(Dir::V2(r.join(d))));
        assert_eq!(cg.cpu_usage_usec(), Some(5_000_000));
        assert_eq!(cg.cpu_limit_cores(), Some(0.5));
        assert_eq!(cg.memory_used_bytes(), Some(104_857_600));
        assert_eq!(cg.memory_limit_bytes(), Some(419_430_400));
        write(&r, &format!("{d}/cpu.max"), "max 100000\n");
        write(&r, &format!("{d}/memory.max"), "max\n");
        assert_eq!(cg.cpu_limit_cores(), None);
        assert_eq!(cg.memory_limit_bytes(), None);
        let _ = fs::remove_dir_all(&r);
    }

    #[test]
    fn v1_fixture_in_a_container_mount() {
        // Docker without a cgroup namespace: the container's cgroup is bind-mounted at
        // the controller's mount point, whose root is the container's path.
        let r = tmp("v1");
        write(
            &r,
            "proc/self/cgroup",
            "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/system.slice/docker.service\n",
        );
        write(
            &r,
            "proc/self/mountinfo",
            "40 35 0:35 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n\
             41 35 0:36 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n",
        );
        write(
            &r,
            "sys/fs/cgroup/cpu,cpuacct/cpuacct.usage",
            "2500000000\n",
        );
        write(&r, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "150000\n");
        write(
            &r,
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us",
            "100000\n",
        );
        write(
            &r,
            "sys/fs/cgroup/memory/memory.usage_in_bytes",
            "300000000\n",
        );
        write(
            &r,
            "sys/fs/cgroup/memory/memory.stat",
            "cache 100000000\ntotal_inactive_file 7\n",
        );
        write(
            &r,
            "sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        let cg = Cgroup::detect(&r);
        assert_eq!(cg.cpu_usage_usec(), Some(2_500_000));
        assert_eq!(cg.cpu_limit_cores(), Some(1.5));
        assert_eq!(cg.memory_used_bytes(), Some(200_000_000));
        assert_eq!(
            cg.memory_limit_bytes(),
            None,
            "v1 'unlimited' is a huge number"
        );
        write(&r, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
        assert_eq!(cg.cpu_limit_cores(), None);
        let _ = fs::remove_dir_all(&r);
    }

    #[test]
    fn hybrid_uses_v1_when_v2_has_no_controllers() {
        let r = tmp("hybrid");
        write(
            &r,
            "proc/self/cgroup",
            "4:memory:/job\n1:cpu:/job\n2:cpuacct:/job\n0::/\n",
        );
        write(
            &r,
            "proc/self/mountinfo",
            "1 0 0:1 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             2 0 0:2 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
             3 0 0:3 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n\
             4 0 0:4 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        write(&r, "sys/fs/cgroup/unified/cgroup.controllers", "\n");
        let cg = Cgroup::detect(&r);
        assert_eq!(cg.cpu, Some(Dir::V1(r.join("sys/fs/cgroup/cpu/job"))));
        assert_eq!(
            cg.cpuacct,
            Some(Dir::V1(r.join("sys/fs/cgroup/cpuacct/job")))
        );
        assert_eq!(cg.memory, Some(Dir::V1(r.join("sys/fs/cgroup/memory/job"))));
        let _ = fs::remove_dir_all(&r);
    }
}
