//! File tools, one file each, and what they share.

pub(crate) mod archive;
pub(crate) mod file_args;
pub mod fs_archive_create;
pub mod fs_archive_extract;
pub mod fs_chmod;
pub mod fs_chown;
pub mod fs_copy;
pub mod fs_diff;
pub mod fs_du;
pub mod fs_find;
pub mod fs_grep;
pub mod fs_list;
pub mod fs_mkdir;
pub mod fs_move;
pub mod fs_patch;
pub mod fs_read;
pub mod fs_readlink;
pub mod fs_remove;
pub mod fs_stat;
pub mod fs_stream_read;
pub mod fs_stream_write;
pub mod fs_symlink;
pub mod fs_tail;
pub mod fs_write;
pub(crate) mod lines;
pub(crate) mod walk;
