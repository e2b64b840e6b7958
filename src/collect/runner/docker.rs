//! Whether a runner's user can use Docker, judged from files alone: the
//! socket's owner, mode and POSIX ACL (the `system.posix_acl_access`
//! extended attribute), and the user's groups from /etc/passwd and
//! /etc/group. The socket is never connected to (the exporter may run as
//! root, and a connection would prove the exporter's access, not the
//! runner's). Also Docker's `data-root` from its daemon.json and the
//! filesystem holding it.
//!
//! Users and groups come from the files, not from NSS: asking NSS may
//! contact a directory (LDAP, SSSD) from a collector. A user those files do
//! not list makes the verdict unknown, and says so.

use crate::snapshot::{DockerProbe, RunnerUser, SocketAccess, UserSource};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Docker's default data-root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/docker";
/// The account databases read for users and groups.
const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";
/// Larger account files or daemon configurations are not read.
const MAX_FILE: u64 = 8 * 1024 * 1024;

/// Read, write and execute (search) bits, as in a mode or an ACL entry.
pub const R: u16 = 4;
pub const W: u16 = 2;
pub const X: u16 = 1;

/// What one probe looks at.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeInput {
    pub root: PathBuf,
    /// `User=` of the runner's unit, when it has one.
    pub unit_user: Option<String>,
    pub socket: PathBuf,
    pub daemon_config: PathBuf,
}

/// The account databases, as text.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    pub passwd: String,
    pub group: String,
}

impl Accounts {
    /// /etc/passwd and /etc/group; a file that cannot be read is empty.
    pub fn read() -> Accounts {
        let read = |p: &str| read_small(Path::new(p)).ok().flatten().unwrap_or_default();
        Accounts {
            passwd: String::from_utf8_lossy(&read(PASSWD)).into_owned(),
            group: String::from_utf8_lossy(&read(GROUP)).into_owned(),
        }
    }

    /// (name, uid, gid) of the passwd entries.
    fn users(&self) -> impl Iterator<Item = (&str, u32, u32)> {
        self.passwd.lines().filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let uid = f.next()?.parse().ok()?;
            let gid = f.next()?.parse().ok()?;
            Some((name, uid, gid))
        })
    }

    /// (name, gid, members) of the group entries.
    fn groups(&self) -> impl Iterator<Item = (&str, u32, &str)> {
        self.group.lines().filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let gid = f.next()?.parse().ok()?;
            Some((name, gid, f.next().unwrap_or("")))
        })
    }

    /// The name of group `gid`, or the number.
    pub fn group_name(&self, gid: u32) -> String {
        self.groups()
            .find(|(_, g, _)| *g == gid)
            .map_or_else(|| gid.to_string(), |(n, _, _)| n.to_string())
    }

    /// The name of user `uid`, or the number.
    pub fn user_name(&self, uid: u32) -> String {
        self.users()
            .find(|(_, u, _)| *u == uid)
            .map_or_else(|| uid.to_string(), |(n, _, _)| n.to_string())
    }

    /// A user by name or number, with its primary and supplementary
    /// groups. Err when the files do not list it (a name), with why.
    pub fn resolve(&self, who: &str, source: UserSource) -> Result<RunnerUser, String> {
        let numeric: Option<u32> = who.parse().ok();
        let entry = self
            .users()
            .find(|(n, u, _)| *n == who || Some(*u) == numeric);
        let (name, uid, gid) = match (entry, numeric) {
            (Some((n, u, g)), _) => (Some(n.to_string()), u, Some(g)),
            (None, Some(u)) => (None, u, None),
            (None, None) => {
                return Err(format!(
                    "user {who} is not in {PASSWD} (a directory user?): its groups cannot be read"
                ))
            }
        };
        let groups = match &name {
            Some(n) => self
                .groups()
                .filter(|(_, _, members)| members.split(',').any(|m| m.trim() == n))
                .map(|(_, g, _)| g)
                .collect(),
            None => Vec::new(),
        };
        Ok(RunnerUser {
            name,
            uid,
            gid,
            groups,
            source,
        })
    }
}

/// Reads a small regular file (symlinks followed: /etc entries often are
/// links; a FIFO is opened without blocking and refused); Ok(None) when it
/// does not exist.
fn read_small(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than the {MAX_FILE} read",
            meta.len()
        )));
    }
    let mut out = Vec::new();
    file.take(MAX_FILE).read_to_end(&mut out)?;
    Ok(Some(out))
}

/// ACL entry tags (`acl_tag_t` as stored in the xattr).
const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;
/// The version in the xattr's header.
const ACL_XATTR_VERSION: u32 = 2;

/// One entry of a POSIX access ACL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclEntry {
    UserObj(u16),
    User(u32, u16),
    GroupObj(u16),
    Group(u32, u16),
    Mask(u16),
    Other(u16),
}

/// Parses `system.posix_acl_access`: a little-endian u32 version (2), then
/// entries of tag u16, permissions u16 and id u32.
pub fn parse_acl(bytes: &[u8]) -> Result<Vec<AclEntry>, String> {
    let Some((head, body)) = bytes.split_first_chunk::<4>() else {
        return Err(format!("{} bytes, too short for an ACL", bytes.len()));
    };
    let version = u32::from_le_bytes(*head);
    if version != ACL_XATTR_VERSION {
        return Err(format!("ACL version {version}, not {ACL_XATTR_VERSION}"));
    }
    if body.len() % 8 != 0 {
        return Err(format!(
            "ACL of {} bytes is not a whole number of entries",
            bytes.len()
        ));
    }
    body.chunks_exact(8)
        .map(|e| {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u16::from_le_bytes([e[2], e[3]]) & 7;
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            Ok(match tag {
                ACL_USER_OBJ => AclEntry::UserObj(perm),
                ACL_USER => AclEntry::User(id, perm),
                ACL_GROUP_OBJ => AclEntry::GroupObj(perm),
                ACL_GROUP => AclEntry::Group(id, perm),
                ACL_MASK => AclEntry::Mask(perm),
                ACL_OTHER => AclEntry::Other(perm),
                t => return Err(format!("unknown ACL entry tag {t:#x}")),
            })
        })
        .collect()
}

/// A file's owner, group, mode and access ACL.
#[derive(Clone, Debug, PartialEq)]
pub struct FileAccess {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub acl: Option<Vec<AclEntry>>,
}

/// The access ACL of `path`: None when it has none (or the filesystem
/// has no ACLs).
fn read_acl(path: &Path) -> Result<Option<Vec<AclEntry>>, String> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{} contains a NUL byte", path.display()))?;
    let mut buf = vec![0u8; 512];
    loop {
        // SAFETY: c and the attribute name are NUL-terminated; buf is
        // writable for buf.len() bytes.
        let n = unsafe {
            libc::getxattr(
                c.as_ptr(),
                c"system.posix_acl_access".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if let Ok(n) = usize::try_from(n) {
            buf.truncate(n);
            return parse_acl(&buf)
                .map(Some)
                .map_err(|e| format!("the ACL of {}: {e}", path.display()));
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < 64 * 1024 => buf.resize(buf.len() * 8, 0),
            _ => return Err(format!("reading the ACL of {}: {e}", path.display())),
        }
    }
}

impl FileAccess {
    /// stat (following symlinks) and the ACL of `path`.
    pub fn of(path: &Path) -> Result<(FileAccess, std::fs::Metadata), std::io::Error> {
        let m = std::fs::metadata(path)?;
        let acl = read_acl(path).map_err(std::io::Error::other)?;
        Ok((
            FileAccess {
                uid: m.uid(),
                gid: m.gid(),
                mode: m.mode() & 0o7777,
                acl,
            },
            m,
        ))
    }

    /// Whether `user` has every bit of `want`, as the kernel decides it
    /// (owner, then named user, then any matching group, then others; the
    /// mask limits named users and all groups), and by what.
    pub fn allows(
        &self,
        user: &RunnerUser,
        want: u16,
        accounts: &Accounts,
    ) -> Result<String, String> {
        if user.uid == 0 {
            return Ok("the user is root".into());
        }
        let in_group = |g: u32| user.gid == Some(g) || user.groups.contains(&g);
        let group_word = |g: u32| {
            let kind = if user.gid == Some(g) {
                "primary"
            } else {
                "supplementary"
            };
            format!("group {} ({kind})", accounts.group_name(g))
        };
        let perms = |p: u16| {
            let bit = |b: u16, c: char| if p & b != 0 { c } else { '-' };
            format!("{}{}{}", bit(R, 'r'), bit(W, 'w'), bit(X, 'x'))
        };
        let ok = |p: u16| p & want == want;
        let Some(acl) = &self.acl else {
            let (p, by) = if user.uid == self.uid {
                (((self.mode >> 6) & 7) as u16, "owner".to_string())
            } else if in_group(self.gid) {
                (((self.mode >> 3) & 7) as u16, group_word(self.gid))
            } else {
                ((self.mode & 7) as u16, "others".to_string())
            };
            return if ok(p) {
                Ok(by)
            } else {
                Err(format!("as {by} it has {}", perms(p)))
            };
        };
        let mask = acl
            .iter()
            .find_map(|e| match e {
                AclEntry::Mask(m) => Some(*m),
                _ => None,
            })
            .unwrap_or(7);
        if user.uid == self.uid {
            let p = acl.iter().find_map(|e| match e {
                AclEntry::UserObj(p) => Some(*p),
                _ => None,
            });
            let p = p.unwrap_or(((self.mode >> 6) & 7) as u16);
            return if ok(p) {
                Ok("owner".into())
            } else {
                Err(format!("as owner it has {}", perms(p)))
            };
        }
        if let Some(p) = acl.iter().find_map(|e| match e {
            AclEntry::User(u, p) if *u == user.uid => Some(*p),
            _ => None,
        }) {
            return if ok(p & mask) {
                Ok("an ACL entry for the user".into())
            } else {
                Err(format!(
                    "its ACL entry gives {} (mask {})",
                    perms(p),
                    perms(mask)
                ))
            };
        }
        let mut matched = Vec::new();
        for e in acl {
            let (g, p, what) = match e {
                AclEntry::GroupObj(p) => (self.gid, *p, "owning group"),
                AclEntry::Group(g, p) => (*g, *p, "ACL entry for"),
                _ => continue,
            };
            if !in_group(g) {
                continue;
            }
            if ok(p & mask) {
                return Ok(if what == "owning group" {
                    group_word(g)
                } else {
                    format!("an ACL entry for {}", group_word(g))
                });
            }
            matched.push(format!("{} gives {}", group_word(g), perms(p & mask)));
        }
        if !matched.is_empty() {
            // A matching group entry that does not grant denies: others
            // are not consulted.
            return Err(matched.join(", "));
        }
        let p = acl
            .iter()
            .find_map(|e| match e {
                AclEntry::Other(p) => Some(*p),
                _ => None,
            })
            .unwrap_or((self.mode & 7) as u16);
        if ok(p) {
            Ok("others".into())
        } else {
            Err(format!("as others it has {}", perms(p)))
        }
    }

    /// `root:docker 0660` (`+acl` when it has entries beyond the mode).
    pub fn describe(&self, accounts: &Accounts) -> String {
        let extended = self.acl.as_ref().is_some_and(|a| {
            a.iter().any(|e| {
                matches!(
                    e,
                    AclEntry::User(..) | AclEntry::Group(..) | AclEntry::Mask(_)
                )
            })
        });
        format!(
            "{}:{} {:04o}{}",
            accounts.user_name(self.uid),
            accounts.group_name(self.gid),
            self.mode & 0o777,
            if extended { " +acl" } else { "" }
        )
    }
}

/// Whether `user` can connect to the socket at `socket`: write permission
/// on the socket, and search permission on every directory above it
/// (symlinks resolved).
pub fn socket_access(socket: &Path, user: &RunnerUser, accounts: &Accounts) -> SocketAccess {
    let who = user.describe();
    let (file, meta) = match FileAccess::of(socket) {
        Ok(x) => x,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return SocketAccess::Missing,
        Err(e) => return SocketAccess::Unknown(format!("cannot read {}: {e}", socket.display())),
    };
    if !meta.file_type().is_socket() {
        return SocketAccess::Denied(format!(
            "{} is not a socket (a {}): Docker is not listening there",
            socket.display(),
            if meta.is_dir() { "directory" } else { "file" }
        ));
    }
    let real = std::fs::canonicalize(socket).unwrap_or_else(|_| socket.to_path_buf());
    let mut dirs: Vec<&Path> = real.ancestors().skip(1).collect();
    dirs.reverse();
    for dir in dirs {
        let access = match FileAccess::of(dir) {
            Ok((a, _)) => a,
            Err(e) => return SocketAccess::Unknown(format!("cannot read {}: {e}", dir.display())),
        };
        if let Err(why) = access.allows(user, X, accounts) {
            return SocketAccess::Denied(format!(
                "{who} cannot enter {} ({}): {why}",
                dir.display(),
                access.describe(accounts)
            ));
        }
    }
    match file.allows(user, W, accounts) {
        Ok(how) => SocketAccess::Granted(format!(
            "{who} can connect to {} ({}) as {how}",
            socket.display(),
            file.describe(accounts)
        )),
        Err(why) => SocketAccess::Denied(format!(
            "{who} cannot connect to {} ({}): {why}",
            socket.display(),
            file.describe(accounts)
        )),
    }
}

/// Docker's data-root from its daemon.json (`data-root`, or the older
/// `graph`), and why the default is used when the file is unusable.
pub fn data_root(daemon_config: &Path) -> (PathBuf, Option<String>) {
    let default = PathBuf::from(DEFAULT_DATA_ROOT);
    let bytes = match read_small(daemon_config) {
        Ok(Some(b)) => b,
        Ok(None) => return (default, None),
        Err(e) => {
            return (
                default,
                Some(format!("cannot read {}: {e}", daemon_config.display())),
            )
        }
    };
    let v: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return (
                default,
                Some(format!("cannot parse {}: {e}", daemon_config.display())),
            )
        }
    };
    let named = ["data-root", "graph"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|x| x.as_str()));
    match named {
        Some(p) if Path::new(p).is_absolute() => (PathBuf::from(p), None),
        Some(p) => (
            default,
            Some(format!(
                "{}: data-root {p:?} is not an absolute path",
                daemon_config.display()
            )),
        ),
        None => (default, None),
    }
}

/// The runner's user: `User=` of its unit, else the owner of its root.
fn runner_user(input: &ProbeInput, accounts: &Accounts) -> Result<RunnerUser, String> {
    if let Some(u) = &input.unit_user {
        return accounts.resolve(u, UserSource::Unit);
    }
    let uid = std::fs::metadata(&input.root)
        .map_err(|e| format!("cannot read the owner of {}: {e}", input.root.display()))?
        .uid();
    accounts.resolve(&uid.to_string(), UserSource::RootOwner)
}

/// One probe (file reads and a statvfs: run it on a blocking thread).
pub fn probe(input: &ProbeInput) -> DockerProbe {
    let accounts = Accounts::read();
    let user = runner_user(input, &accounts);
    let access = match &user {
        Ok(u) => socket_access(&input.socket, u, &accounts),
        Err(why) => SocketAccess::Unknown(why.clone()),
    };
    let (data_root, config_error) = data_root(&input.daemon_config);
    let data_fs = super::registration::work_filesystem(&data_root).ok();
    DockerProbe {
        socket: input.socket.clone(),
        user: user.ok(),
        access,
        data_root,
        config_error,
        data_fs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_TEXT: &str = "root:x:0:0:root:/root:/bin/bash\n\
        runner:x:1001:1001::/home/runner:/bin/bash\n\
        builder:x:1002:1002::/home/builder:/bin/bash\n\
        broken line\n";
    const GROUP_TEXT: &str = "root:x:0:\n\
        docker:x:999:builder,other\n\
        runner:x:1001:\n\
        builder:x:1002:\n\
        ci:x:2000:runner\n";

    fn accounts() -> Accounts {
        Accounts {
            passwd: PASSWD_TEXT.into(),
            group: GROUP_TEXT.into(),
        }
    }

    fn user(name: &str) -> RunnerUser {
        accounts().resolve(name, UserSource::Unit).unwrap()
    }

    fn acl_bytes(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut b = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in entries {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&perm.to_le_bytes());
            b.extend_from_slice(&id.to_le_bytes());
        }
        b
    }

    #[test]
    fn users_and_groups_come_from_the_account_files() {
        let a = accounts();
        let b = user("builder");
        assert_eq!((b.uid, b.gid), (1002, Some(1002)));
        assert_eq!(b.groups, [999]);
        let r = a.resolve("1001", UserSource::RootOwner).unwrap();
        assert_eq!(r.name.as_deref(), Some("runner"));
        assert_eq!(r.groups, [2000]);
        let unknown = a.resolve("4242", UserSource::RootOwner).unwrap();
        assert_eq!((unknown.name, unknown.gid), (None, None));
        assert!(a
            .resolve("ldap-user", UserSource::Unit)
            .unwrap_err()
            .contains("not in /etc/passwd"));
        assert_eq!(a.group_name(999), "docker");
        assert_eq!(a.group_name(5), "5");
    }

    #[test]
    fn acls_parse_from_the_xattr_format() {
        let b = acl_bytes(&[
            (1, 6, u32::MAX),
            (2, 6, 1001),
            (4, 6, u32::MAX),
            (8, 6, 2000),
            (0x10, 6, u32::MAX),
            (0x20, 0, u32::MAX),
        ]);
        assert_eq!(
            parse_acl(&b).unwrap(),
            [
                AclEntry::UserObj(6),
                AclEntry::User(1001, 6),
                AclEntry::GroupObj(6),
                AclEntry::Group(2000, 6),
                AclEntry::Mask(6),
                AclEntry::Other(0),
            ]
        );
        assert!(parse_acl(&[2, 0]).is_err());
        assert!(parse_acl(&acl_bytes(&[(0x40, 6, 0)])).is_err());
        let mut v1 = acl_bytes(&[(1, 6, 0)]);
        v1[0] = 1;
        assert!(parse_acl(&v1).is_err());
        assert!(parse_acl(&acl_bytes(&[(1, 6, 0)])[..10]).is_err());
    }

    #[test]
    fn the_socket_is_judged_as_the_kernel_would() {
        let a = accounts();
        // root:docker 0660, no ACL.
        let sock = FileAccess {
            uid: 0,
            gid: 999,
            mode: 0o660,
            acl: None,
        };
        assert_eq!(
            sock.allows(&user("builder"), W, &a).unwrap(),
            "group docker (supplementary)"
        );
        let denied = sock.allows(&user("runner"), W, &a).unwrap_err();
        assert_eq!(denied, "as others it has ---");
        assert_eq!(
            sock.allows(&user("root"), W, &a).unwrap(),
            "the user is root"
        );
        assert_eq!(sock.describe(&a), "root:docker 0660");
        // An ACL entry for the user, limited by the mask.
        let with = |acl: Vec<AclEntry>| FileAccess {
            acl: Some(acl),
            ..sock.clone()
        };
        let base = vec![
            AclEntry::UserObj(6),
            AclEntry::GroupObj(6),
            AclEntry::Other(0),
        ];
        let mut user_entry = base.clone();
        user_entry.extend([AclEntry::User(1001, 6), AclEntry::Mask(6)]);
        assert_eq!(
            with(user_entry.clone())
                .allows(&user("runner"), W, &a)
                .unwrap(),
            "an ACL entry for the user"
        );
        assert_eq!(
            with(user_entry.clone()).describe(&a),
            "root:docker 0660 +acl"
        );
        let mut masked = user_entry;
        masked.push(AclEntry::Mask(4));
        masked.retain(|e| *e != AclEntry::Mask(6));
        assert_eq!(
            with(masked).allows(&user("runner"), W, &a).unwrap_err(),
            "its ACL entry gives rw- (mask r--)"
        );
        // A group entry for one of the user's supplementary groups.
        let mut group_entry = base.clone();
        group_entry.extend([AclEntry::Group(2000, 6), AclEntry::Mask(6)]);
        assert_eq!(
            with(group_entry).allows(&user("runner"), W, &a).unwrap(),
            "an ACL entry for group ci (supplementary)"
        );
        // A matching group that does not grant denies, whatever others
        // have.
        let read_only = vec![
            AclEntry::UserObj(6),
            AclEntry::GroupObj(4),
            AclEntry::Other(6),
        ];
        assert_eq!(
            with(read_only.clone())
                .allows(&user("builder"), W, &a)
                .unwrap_err(),
            "group docker (supplementary) gives r--"
        );
        assert_eq!(
            with(read_only).allows(&user("runner"), W, &a).unwrap(),
            "others"
        );
        // The owner's bits are not masked.
        let owner = FileAccess {
            uid: 1001,
            gid: 0,
            mode: 0o600,
            acl: Some(vec![
                AclEntry::UserObj(6),
                AclEntry::GroupObj(0),
                AclEntry::Mask(0),
                AclEntry::Other(0),
            ]),
        };
        assert_eq!(owner.allows(&user("runner"), W, &a).unwrap(), "owner");
    }

    #[test]
    fn data_root_from_daemon_json() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        assert_eq!(data_root(&f), (PathBuf::from(DEFAULT_DATA_ROOT), None));
        std::fs::write(&f, r#"{"data-root": "/srv/docker", "log-driver": "local"}"#).unwrap();
        assert_eq!(data_root(&f), (PathBuf::from("/srv/docker"), None));
        std::fs::write(&f, r#"{"graph": "/mnt/docker"}"#).unwrap();
        assert_eq!(data_root(&f).0, PathBuf::from("/mnt/docker"));
        std::fs::write(&f, r#"{"data-root": "docker"}"#).unwrap();
        let (root, err) = data_root(&f);
        assert_eq!(root, PathBuf::from(DEFAULT_DATA_ROOT));
        assert!(err.unwrap().contains("not an absolute path"));
        std::fs::write(&f, "{ not json").unwrap();
        assert!(data_root(&f).1.unwrap().contains("cannot parse"));
        // A FIFO is refused at once, not waited on.
        std::fs::remove_file(&f).unwrap();
        let c = CString::new(f.as_os_str().as_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (root, err) = data_root(&f);
        assert_eq!(root, PathBuf::from(DEFAULT_DATA_ROOT));
        assert!(err.unwrap().contains("not a regular file"));
    }
}
