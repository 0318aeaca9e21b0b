//! [`HostFiles`] on the built-in `local` host: `std::fs` on a blocking thread.
//! Reads open with `O_NOFOLLOW | O_NONBLOCK` and check the opened file is regular, so
//! a FIFO swapped in after the sandbox's `lstat` cannot hang the server.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::files::{DirEntry, FileKind, FileMeta, HostFiles, io_error};

pub struct LocalFiles;

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::internal(format!("file task failed: {error}")))?
}

fn meta_of(metadata: &fs::Metadata) -> FileMeta {
    let file_type = metadata.file_type();
    let kind = if file_type.is_symlink() {
        FileKind::Symlink
    } else if file_type.is_dir() {
        FileKind::Dir
    } else if file_type.is_file() {
        FileKind::File
    } else {
        FileKind::Special
    };
    FileMeta {
        kind,
        size: metadata.len(),
        mode: metadata.mode() & 0o7777,
        uid: metadata.uid(),
        gid: metadata.gid(),
        mtime: u64::try_from(metadata.mtime()).unwrap_or(0),
    }
}

#[async_trait]
impl HostFiles for LocalFiles {
    async fn lstat(&self, path: &str) -> Result<Option<FileMeta>> {
        let path = path.to_owned();
        blocking(move || match fs::symlink_metadata(&path) {
            Ok(metadata) => Ok(Some(meta_of(&metadata))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error(&path, &error)),
        })
        .await
    }

    async fn read_link(&self, path: &str) -> Result<String> {
        let path = path.to_owned();
        blocking(move || {
            let target = fs::read_link(&path).map_err(|error| io_error(&path, &error))?;
            Ok(target.to_string_lossy().into_owned())
        })
        .await
    }

    async fn read(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let path = path.to_owned();
        blocking(move || {
            let mut file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)
                .map_err(|error| io_error(&path, &error))?;
            let metadata = file.metadata().map_err(|error| io_error(&path, &error))?;
            if !metadata.is_file() {
                return Err(
                    Error::invalid_input(format!("{path} is not a regular file")).with_path(&path),
                );
            }
            file.seek(SeekFrom::Start(offset))
                .map_err(|error| io_error(&path, &error))?;
            let mut data = Vec::new();
            file.take(length)
                .read_to_end(&mut data)
                .map_err(|error| io_error(&path, &error))?;
            Ok(data)
        })
        .await
    }

    async fn create_new(&self, path: &str, data: &[u8], mode: u32) -> Result<()> {
        let (path, data) = (path.to_owned(), data.to_vec());
        blocking(move || {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
                .map_err(|error| io_error(&path, &error))?;
            let written = (|| {
                file.write_all(&data)?;
                // The umask narrowed `mode` at creation; the caller asked for it exactly.
                file.set_permissions(fs::Permissions::from_mode(mode))?;
                file.sync_all()
            })();
            written.map_err(|error| io_error(&path, &error))
        })
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (from, to) = (from.to_owned(), to.to_owned());
        blocking(move || {
            fs::rename(&from, &to).map_err(|error| io_error(&to, &error))?;
            // The rename is durable once the directory holding it is synced. It has
            // happened either way, so a failed sync is logged, not reported as failure.
            let parent = crate::sandbox::parent_of(&to);
            if let Err(error) = File::open(parent).and_then(|directory| directory.sync_all()) {
                tracing::warn!("fsync of {parent} after renaming {to}: {error}");
            }
            Ok(())
        })
        .await
    }

    async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let path = path.to_owned();
        blocking(move || {
            let mut entries = Vec::new();
            for entry in fs::read_dir(&path).map_err(|error| io_error(&path, &error))? {
                let entry = entry.map_err(|error| io_error(&path, &error))?;
                // An entry removed meanwhile is skipped, not an error for the listing.
                let Ok(metadata) = fs::symlink_metadata(entry.path()) else {
                    continue;
                };
                entries.push(DirEntry {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    meta: meta_of(&metadata),
                });
            }
            Ok(entries)
        })
        .await
    }

    async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        let path = path.to_owned();
        blocking(move || {
            fs::DirBuilder::new()
                .mode(mode)
                .create(&path)
                .map_err(|error| io_error(&path, &error))
        })
        .await
    }

    async fn remove_file(&self, path: &str) -> Result<()> {
        let path = path.to_owned();
        blocking(move || fs::remove_file(&path).map_err(|error| io_error(&path, &error))).await
    }

    async fn remove_dir(&self, path: &str) -> Result<()> {
        let path = path.to_owned();
        blocking(move || fs::remove_dir(&path).map_err(|error| io_error(&path, &error))).await
    }

    async fn symlink(&self, target: &str, link_path: &str) -> Result<()> {
        let (target, link_path) = (target.to_owned(), link_path.to_owned());
        blocking(move || {
            std::os::unix::fs::symlink(&target, &link_path)
                .map_err(|error| io_error(&link_path, &error))
        })
        .await
    }

    async fn set_mode(&self, path: &str, mode: u32) -> Result<()> {
        let path = path.to_owned();
        blocking(move || {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|error| io_error(&path, &error))
        })
        .await
    }

    async fn set_owner(&self, path: &str, uid: u32, gid: u32) -> Result<()> {
        let path = path.to_owned();
        blocking(move || {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .map_err(|error| io_error(&path, &error))
        })
        .await
    }

    async fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> Result<()> {
        let (path, data) = (path.to_owned(), data.to_vec());
        blocking(move || {
            let file = open_regular_for_write(&path)?;
            std::os::unix::fs::FileExt::write_all_at(&file, &data, offset)
                .map_err(|error| io_error(&path, &error))
        })
        .await
    }

    async fn truncate(&self, path: &str, length: u64) -> Result<()> {
        let path = path.to_owned();
        blocking(move || {
            open_regular_for_write(&path)?
                .set_len(length)
                .map_err(|error| io_error(&path, &error))
        })
        .await
    }

    async fn sync(&self, path: &str) -> Result<()> {
        let path = path.to_owned();
        blocking(move || {
            open_regular_for_write(&path)?
                .sync_all()
                .map_err(|error| io_error(&path, &error))
        })
        .await
    }
}

/// Opens an existing regular file for writing without following a final symlink or
/// blocking on a FIFO.
fn open_regular_for_write(path: &str) -> Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| io_error(path, &error))?;
    let metadata = file.metadata().map_err(|error| io_error(path, &error))?;
    if !metadata.is_file() {
        return Err(Error::invalid_input(format!("{path} is not a regular file")).with_path(path));
    }
    Ok(file)
}
