// File safety: dptrain never writes through a link, never deletes what is not its own, and
// writes every file it replaces atomically (Note [file safety]).
#pragma once
#include <string>
#include <vector>

namespace dpt {

// Note [file safety] (docs/FAULTS.md, "Files"): in a shared, group-writable runs folder anyone
// may plant a symbolic link where dptrain will write (run_dir/.dptrain.lock -> ~/thesis.tex).
// So every file dptrain creates or appends is opened with O_NOFOLLOW (a link there is an error
// naming it), new files are created exclusively (O_EXCL: never through a link, never over an
// existing file), files it replaces are written to a temporary name and renamed over the old
// one (rename replaces a link itself, never its target), and the folders it makes inside a run
// directory must be real folders. A folder the user names (run_dir, checkpoint.dir, --out) may
// be a link when the user owns it; a link owned by someone else is refused. dptrain deletes
// only its own temporary files (Note [own temporaries]).

// Throws, naming it, if path is a symbolic link (what: "the run lock", "metrics.csv", ...).
void refuse_link(const std::string& path, const std::string& what);

// A new file, created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW): an existing file or link at
// path is an error naming it. Returns the descriptor (close it).
int create_new_file(const std::string& path, const std::string& what);

// Appends to path, creating it; a link there, or anything but a regular file, is an error.
int open_for_append(const std::string& path, const std::string& what);

// Writes all of bytes to fd; false (errno set) on failure.
bool write_all(int fd, const void* bytes, size_t n);

// path.tmp-PID, the temporary name of this process for path; a leftover of that name (a link
// included: unlink removes the link, not its target) is removed first.
std::string fresh_temporary(const std::string& path);

// mkdir -p of a folder the user named: each existing component may be a link only if it is
// the user's own (lstat's owner is this process's user); a clear error otherwise.
void make_user_directory(const std::string& dir, const std::string& what);
// A folder dptrain makes inside one it owns (tensorboard/, checkpoints/, plots/): created, or
// there already as a real folder; a link is refused.
void make_own_directory(const std::string& dir, const std::string& what);

// Note [own temporaries]: a temporary file dptrain may delete is NAME.tmp-PID where NAME is one
// of the files it writes (ckpt-EEEE-SSSSSSSS.h5, config.yaml, summary.yaml, metrics.csv, an
// events.out.tfevents.* file), PID is dead on this host, and the file is this user's. Anything
// else (thesis.tmp-final.docx, a live writer's temporary) stays.
bool is_own_stale_temporary(const std::string& dir, const std::string& name);

// The folders in dir whose whole name matches pattern, whose PID (the regex group pid_group)
// is dead on this host and that are this user's real folders: staging folders of dptrain
// processes that died. The caller decides what in them it may delete.
std::vector<std::string> dead_own_folders(const std::string& dir, const std::string& pattern,
                                          int pid_group);

// A regular file (not a FIFO, device or folder), checked before opening, so that reading it
// never blocks: an error naming what it is otherwise.
void require_regular_file(const std::string& path, const std::string& what);

// The same file by device and inode (both exist).
bool same_file(const std::string& a, const std::string& b);

// Checks an output path before any work: it must not be (by device and inode) one of inputs
// (`eval CKPT --predictions CKPT` would replace what it reads), must not be (or point to)
// anything but a regular file (a folder, /dev/null, /dev/stdout would be replaced by the
// rename). what names the output ("--predictions").
void check_output_path(const std::string& out, const std::string& what,
                       const std::vector<std::string>& inputs);

}  // namespace dpt
