//! `inspect`: the header and entries of metrics files as JSON lines, and where a corrupt file goes wrong.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use prometheus_multiproc::format::parse_file_name;
use prometheus_multiproc::format::{self, Corrupt, CorruptKind, Entries, HEADER_LEN};
use prometheus_multiproc::{Liveness, format as key, probe_liveness};

use crate::{CliResult, fail};

#[derive(clap::Args)]
#[command(after_help = "\
Prints one JSON object per line on stdout. For each file, first a header line:
  {\"file\":..,\"kind\":..,\"id\":..,\"size\":..,\"used\":..,\"lock_marker\":..,\"writer\":\"alive|dead|unknown\"}
then one line per entry:
  {\"file\":..,\"offset\":..,\"key\":..,\"value\":..,\"timestamp\":..}
(offset is where the entry starts; non-finite values are the strings \"NaN\", \
\"+Inf\", \"-Inf\"), and for a corrupt file a last line
  {\"file\":..,\"corrupt\":{\"offset\":..,\"error\":..}}
also reported on stderr. Exits 1 at the end if any file was corrupt or unreadable. \
Symbolic links are never followed.")]
pub struct Args {
    /// Metrics files (*.db) to read.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> CliResult {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut bad = 0usize;
    for path in &args.files {
        match inspect_file(path, &mut out) {
            Ok(None) => {}
            Ok(Some(c)) => {
                bad += 1;
                out.flush().map_err(crate::stdout_error)?;
                eprintln!(
                    "prometheus-multiproc: inspect: {}: corrupt from byte offset {}: {c}",
                    path.display(),
                    c.offset
                );
            }
            Err(Problem::Stdout(e)) => return Err(crate::stdout_error(e)),
            Err(Problem::Read(why)) => {
                bad += 1;
                out.flush().map_err(crate::stdout_error)?;
                eprintln!("prometheus-multiproc: inspect: {}: {why}", path.display());
            }
        }
    }
    out.flush().map_err(crate::stdout_error)?;
    if bad > 0 {
        return Err(fail!(
            "inspect: {bad} of {} files corrupt or unreadable",
            args.files.len()
        ));
    }
    Ok(())
}

enum Problem {
    /// The file could not be read.
    Read(String),
    /// Writing our output failed.
    Stdout(io::Error),
}

impl From<io::Error> for Problem {
    fn from(e: io::Error) -> Self {
        Problem::Stdout(e)
    }
}

/// Opens without following a symlink and without blocking on a FIFO.
fn open(path: &Path) -> Result<File, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                "is a symbolic link (not followed)".to_string()
            } else {
                e.to_string()
            }
        })?;
    Ok(file)
}

/// Prints a file's header line and entries; returns the corruption found, if any.
fn inspect_file(path: &Path, out: &mut impl Write) -> Result<Option<Corrupt>, Problem> {
    let file = open(path).map_err(Problem::Read)?;
    let meta = file.metadata().map_err(|e| Problem::Read(e.to_string()))?;
    if !meta.is_file() {
        return Err(Problem::Read("not a regular file".into()));
    }
    let size = meta.len();
    // Every read is bounded by the size the file has now.
    let mut header = Vec::with_capacity(HEADER_LEN);
    (&file)
        .take(size.min(HEADER_LEN as u64))
        .read_to_end(&mut header)
        .map_err(|e| Problem::Read(e.to_string()))?;
    let used = format::read_used(&header);
    let want = match used {
        Some(u) if u as i64 > HEADER_LEN as i64 => (u as u64).min(size),
        _ => (HEADER_LEN as u64).min(size),
    };
    let mut buf = header.clone();
    (&file)
        .take(want.saturating_sub(buf.len() as u64))
        .read_to_end(&mut buf)
        .map_err(|e| Problem::Read(e.to_string()))?;

    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let parsed = name.as_deref().and_then(parse_file_name);
    let writer = match probe_liveness(&file, &header) {
        Liveness::Alive => "alive",
        Liveness::Dead => "dead",
        // Unknown, and any state a later version adds.
        _ => "unknown",
    };
    let file_json = json_string(&path.to_string_lossy());
    let mut line = format!("{{\"file\":{file_json}");
    match parsed {
        Some((kind, id)) => {
            line.push_str(&format!(
                ",\"kind\":{},\"id\":{}",
                json_string(&kind.prefix()),
                json_string(id)
            ));
        }
        None => line.push_str(",\"kind\":null,\"id\":null"),
    }
    line.push_str(&format!(
        ",\"size\":{size},\"used\":{},\"lock_marker\":{},\"writer\":\"{writer}\"}}",
        used.map_or("null".to_string(), |u| u.to_string()),
        format::has_lock_marker(&header)
    ));
    writeln!(out, "{line}")?;

    let corrupt = match walk(&buf, &file_json, out)? {
        Ok(()) => return Ok(None),
        Err(c) => c,
    };
    writeln!(
        out,
        "{{\"file\":{file_json},\"corrupt\":{{\"offset\":{},\"error\":{}}}}}",
        corrupt.offset,
        json_string(&corrupt.to_string())
    )?;
    Ok(Some(corrupt))
}

/// Prints the entries of `buf`; the inner result is the corruption, if any.
fn walk(buf: &[u8], file_json: &str, out: &mut impl Write) -> io::Result<Result<(), Corrupt>> {
    let entries = match Entries::new(buf) {
        Ok(e) => e,
        Err(c) => return Ok(Err(c)),
    };
    for e in entries {
        let e = match e {
            Ok(e) => e,
            Err(c) => return Ok(Err(c)),
        };
        let offset = e.value_offset - format::value_offset(e.key.len());
        let Ok(k) = std::str::from_utf8(e.key) else {
            return Ok(Err(Corrupt {
                offset,
                kind: CorruptKind::InvalidUtf8,
            }));
        };
        if let Err(why) = key::decode_key(e.key) {
            return Ok(Err(Corrupt {
                offset,
                kind: CorruptKind::BadKey(why),
            }));
        }
        writeln!(
            out,
            "{{\"file\":{file_json},\"offset\":{offset},\"key\":{},\"value\":{},\"timestamp\":{}}}",
            json_string(k),
            json_number(e.value),
            json_number(e.timestamp)
        )?;
    }
    Ok(Ok(()))
}

/// A JSON string literal, escaped by serde_json (this output is ours, not
/// prometheus_client's, so no byte-compatibility is at stake).
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A JSON number, or the string `"NaN"`, `"+Inf"`, `"-Inf"` for what JSON
/// cannot hold.
fn json_number(v: f64) -> String {
    if v.is_nan() {
        "\"NaN\"".into()
    } else if v == f64::INFINITY {
        "\"+Inf\"".into()
    } else if v == f64::NEG_INFINITY {
        "\"-Inf\"".into()
    } else {
        // Debug is the shortest text that reads back as the same f64, and
        // always a valid JSON number ("1.0", "1e300", "-0.0").
        format!("{v:?}")
    }
}
