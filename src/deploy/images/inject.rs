//! `bosun-deploy inject IMAGE --tag NEW`: a new image from a local one, with bosun
//! (and its AWS helper `bosun-aws`, when it sits beside the given bosun) added and
//! wrapping the original ENTRYPOINT and CMD (`bosun -- <entrypoint> <cmd>`), through
//! the Docker CLI. The image's user, workdir and environment are inherited
//! as they are; its STOPSIGNAL becomes bosun's `BOSUN_STOP_SIGNAL` (Docker now sends
//! SIGTERM to bosun, which sends the original signal to the worker).

use std::path::Path;

use serde_json::Value;

use crate::deploy::naming::BOSUN_PATH;
use crate::metrics::helper::HELPER;

pub(crate) fn docker(args: &[&str]) -> Result<String, String> {
    let out = super::tool("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn json_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The Dockerfile that wraps an image whose config (`docker image inspect`'s
/// `.Config`) is `config`; `with_helper` adds `bosun-aws` beside bosun.
/// The layer file in the build context.
const LAYER: &str = "bosun-layer.tar";

/// Write a tar of `files` (path in the image → file here): [`layer_bytes`].
pub fn layer(out: &Path, files: &[(String, std::path::PathBuf)]) -> Result<(), String> {
    let bytes = layer_bytes(files)?;
    std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))
}

/// A tar of `files` (path in the image → file here) with their parent folders, every
/// entry owned by root and dated 1970-01-01: the same binaries give the same bytes, so
/// Docker makes the same layer of them at every build, and a registry the same blob.
pub fn layer_bytes(files: &[(String, std::path::PathBuf)]) -> Result<Vec<u8>, String> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, _) in files {
        let mut p = Path::new(path.trim_start_matches('/'));
        while let Some(parent) = p.parent().filter(|x| !x.as_os_str().is_empty()) {
            dirs.insert(parent.to_path_buf());
            p = parent;
        }
    }
    let fail = |e: std::io::Error| format!("the layer of bosun: {e}");
    for d in &dirs {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        h.set_cksum();
        b.append_data(&mut h, format!("{}/", d.display()), std::io::empty())
            .map_err(fail)?;
    }
    for (path, from) in files {
        let data = std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, path.trim_start_matches('/'), data.as_slice())
            .map_err(fail)?;
    }
    b.into_inner().map_err(fail)
}

pub fn dockerfile(image: &str, config: &Value) -> Result<String, String> {
    let entrypoint = json_list(&config["Entrypoint"]);
    let cmd = json_list(&config["Cmd"]);
    if entrypoint.first().is_some_and(|e| e == BOSUN_PATH) {
        return Err(format!("{image} already runs bosun as its entrypoint"));
    }
    let mut new_entry = vec![BOSUN_PATH.to_owned(), "--".to_owned()];
    new_entry.extend(entrypoint);
    // One layer, written by bosun-deploy with fixed times and owners (`layer`): the
    // same bosun is the same layer, whatever the image and whenever it is built.
    let mut df = format!("FROM {image}\nADD {LAYER} /\n");
    df.push_str(&format!(
        "LABEL {}=\"true\"\n",
        super::registry::INJECTED_LABEL
    ));
    if let Some(sig) = config["StopSignal"].as_str().filter(|s| !s.is_empty()) {
        crate::supervise::signals::parse_signal(sig)
            .map_err(|e| format!("{image}: STOPSIGNAL {e}"))?;
        df.push_str(&format!(
            "ENV BOSUN_STOP_SIGNAL={sig}\nSTOPSIGNAL SIGTERM\n"
        ));
    }
    df.push_str(&format!(
        "ENTRYPOINT {}\n",
        serde_json::to_string(&new_entry).map_err(|e| e.to_string())?
    ));
    // A new ENTRYPOINT clears the inherited CMD: restate it.
    if !cmd.is_empty() {
        df.push_str(&format!(
            "CMD {}\n",
            serde_json::to_string(&cmd).map_err(|e| e.to_string())?
        ));
    }
    Ok(df)
}

/// What an executable needs to run in any image: from its ELF header and program
/// headers, its machine (`e_machine`) and whether it asks for a dynamic loader
/// (`PT_INTERP`), which an image may not have.
#[derive(Debug, PartialEq, Eq)]
pub struct Executable {
    /// Docker's name of the architecture (`amd64`, `arm64`), or the ELF machine number.
    pub arch: String,
    pub dynamic: bool,
}

/// Read `bytes` as a 64-bit little-endian ELF executable (what bosun is built as).
pub fn executable(bytes: &[u8]) -> Result<Executable, String> {
    let field = |o: usize, n: usize| o.checked_add(n).and_then(|end| bytes.get(o..end));
    let u16_at = |o: usize| field(o, 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| field(o, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |o: usize| {
        field(o, 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF executable".into());
    }
    if bytes.get(4..6) != Some(&[2, 1]) {
        return Err("not a 64-bit little-endian ELF executable".into());
    }
    let short = || "a truncated ELF file".to_owned();
    let arch = match u16_at(18).ok_or_else(short)? {
        62 => "amd64".to_owned(),
        183 => "arm64".to_owned(),
        m => format!("ELF machine {m}"),
    };
    let phoff = usize::try_from(u64_at(32).ok_or_else(short)?).map_err(|_| short())?;
    let phentsize = usize::from(u16_at(54).ok_or_else(short)?);
    let phnum = usize::from(u16_at(56).ok_or_else(short)?);
    const PT_INTERP: u32 = 3;
    let mut dynamic = false;
    for i in 0..phnum {
        let at = phoff
            .checked_add(i.checked_mul(phentsize).ok_or_else(short)?)
            .ok_or_else(short)?;
        dynamic |= u32_at(at).ok_or_else(short)? == PT_INTERP;
    }
    Ok(Executable { arch, dynamic })
}

/// `path` runs in an image of `arch` without anything from it: a static executable of
/// that architecture.
pub fn check_binary(path: &Path, arch: &str) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let exe = executable(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if exe.dynamic {
        return Err(format!(
            "{}: dynamically linked: an image may have no loader or C library for it; \
             build a static one with docker/build-static.sh (target/static/bosun, which \
             bosun-deploy run from the checkout then finds) or ./install.sh, or pass one with --bosun",
            path.display()
        ));
    }
    if exe.arch != arch {
        return Err(format!(
            "{}: built for {}, but the image is {arch}: build bosun for {arch} \
             (docker/build-static.sh on that architecture)",
            path.display(),
            exe.arch
        ));
    }
    Ok(())
}

/// Build `tag` from `image` with `bosun` (a statically linked bosun) added, and the
/// `bosun-aws` beside it when there is one. Both must be static executables of the
/// image's architecture.
pub fn inject(image: &str, tag: &str, bosun: &Path) -> Result<String, String> {
    let helper = bosun.with_file_name(HELPER);
    inject_with(image, tag, bosun, helper.is_file())
}

/// [`inject`], with `bosun-aws` (beside bosun) put in or left out as `with_helper` says.
pub fn inject_with(
    image: &str,
    tag: &str,
    bosun: &Path,
    with_helper: bool,
) -> Result<String, String> {
    if !bosun.is_file() {
        return Err(format!(
            "{}: no bosun binary there (build one with docker/build-static.sh, or pass --bosun)",
            bosun.display()
        ));
    }
    let inspect = docker(&[
        "image",
        "inspect",
        image,
        "--format",
        "{{json .Config}}\n{{json .Architecture}}",
    ])?;
    let mut lines = inspect.lines();
    let config: Value = serde_json::from_str(lines.next().unwrap_or_default())
        .map_err(|e| format!("docker image inspect {image}: {e}"))?;
    let arch: String = serde_json::from_str(lines.next().unwrap_or_default())
        .map_err(|e| format!("docker image inspect {image}: architecture: {e}"))?;
    let helper = bosun.with_file_name(HELPER);
    check_binary(bosun, &arch)?;
    if with_helper {
        check_binary(&helper, &arch)?;
    }
    let df = dockerfile(image, &config)?;
    let dir = std::env::temp_dir().join(format!("bosun-inject-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = (|| {
        let mut files = vec![(BOSUN_PATH.to_owned(), bosun.to_path_buf())];
        if with_helper {
            files.push((format!("{BOSUN_PATH}-aws"), helper.clone()));
        }
        layer(&dir.join(LAYER), &files)?;
        std::fs::write(dir.join("Dockerfile"), &df)
            .map_err(|e| format!("write Dockerfile: {e}"))?;
        let ctx = dir.display().to_string();
        docker(&["build", "--quiet", "--tag", tag, &ctx])
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|id| id.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF header with program headers of the given types.
    fn elf(machine: u16, types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            b.extend(ph);
        }
        b
    }

    #[test]
    fn executables_are_told_apart_by_loader_and_machine() {
        assert_eq!(
            executable(&elf(62, &[6, 1, 1])),
            Ok(Executable {
                arch: "amd64".into(),
                dynamic: false
            })
        );
        assert_eq!(
            executable(&elf(183, &[6, 3, 1, 2])),
            Ok(Executable {
                arch: "arm64".into(),
                dynamic: true
            })
        );
        assert_eq!(executable(&elf(8, &[])).unwrap().arch, "ELF machine 8");
        assert_eq!(
            executable(b"#!/bin/sh\n").unwrap_err(),
            "not an ELF executable"
        );
        let mut b = elf(62, &[1]);
        b[4] = 1;
        assert!(executable(&b).unwrap_err().contains("64-bit"));
        let b = elf(62, &[1, 3]);
        assert_eq!(executable(&b[..100]).unwrap_err(), "a truncated ELF file");
        // The program headers say where they are: one past the end is refused.
        let mut b = elf(62, &[1]);
        b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(executable(&b).unwrap_err(), "a truncated ELF file");
    }

    #[test]
    fn this_test_binary_reads_as_what_it_is() {
        // The test harness is linked as cargo builds it here: dynamic, for this machine.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let exe = executable(&me).unwrap();
        let arch = if cfg!(target_arch = "x86_64") {
            "amd64"
        } else {
            "arm64"
        };
        assert_eq!(exe.arch, arch);
        assert_eq!(exe.dynamic, !cfg!(target_feature = "crt-static"));
    }

    #[test]
    fn wraps_entrypoint_and_cmd_and_moves_the_stop_signal() {
        let cfg = serde_json::json!({ "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "StopSignal": "SIGQUIT", "User": "1000" });
        let df = dockerfile("app:1", &cfg).unwrap();
        assert!(
            df.contains("ENTRYPOINT [\"/usr/local/bin/bosun\",\"--\",\"/bin/sh\",\"-c\"]"),
            "{df}"
        );
        assert!(df.contains("CMD [\"echo hi\"]"), "{df}");
        assert!(
            df.contains("ENV BOSUN_STOP_SIGNAL=SIGQUIT\nSTOPSIGNAL SIGTERM"),
            "{df}"
        );
        let cfg = serde_json::json!({ "Entrypoint": null, "Cmd": ["worker"] });
        let df = dockerfile("app:1", &cfg).unwrap();
        assert!(
            df.contains("ENTRYPOINT [\"/usr/local/bin/bosun\",\"--\"]\nCMD [\"worker\"]"),
            "{df}"
        );
        let cfg = serde_json::json!({ "Entrypoint": ["/usr/local/bin/bosun", "--"], "Cmd": ["x"] });
        assert!(dockerfile("app:1", &cfg).unwrap_err().contains("already"));
    }

    #[test]
    fn the_bosun_layer_is_the_same_bytes_every_time() {
        let dir = std::env::temp_dir().join(format!("bosun-layer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b"), b"binary").unwrap();
        let files = vec![
            ("/usr/local/bin/bosun".to_owned(), dir.join("b")),
            ("/usr/local/bin/bosun-aws".to_owned(), dir.join("b")),
        ];
        layer(&dir.join("one.tar"), &files).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(dir.join("b"), b"binary").unwrap();
        layer(&dir.join("two.tar"), &files).unwrap();
        let one = std::fs::read(dir.join("one.tar")).unwrap();
        assert_eq!(one, std::fs::read(dir.join("two.tar")).unwrap());
        let mut names = Vec::new();
        let mut a = tar::Archive::new(one.as_slice());
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(
                (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                (0, 0, 0)
            );
            names.push(e.path().unwrap().display().to_string());
        }
        assert_eq!(
            names,
            [
                "usr/",
                "usr/local/",
                "usr/local/bin/",
                "usr/local/bin/bosun",
                "usr/local/bin/bosun-aws"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
