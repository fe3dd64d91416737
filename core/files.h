// File-system helpers shared by every module: directories, atomic text files, disk-full hints.
#pragma once
#include <string>
#include <vector>

namespace dpt {

// Creates dir and its parents; a clear error if that is impossible.
void make_directories(const std::string& dir);

// " (the disk holding 'DIR' is full: 12 KiB free)" when the file's filesystem is (nearly) full,
// else " (check that 'DIR' is writable and has free space)": appended to write errors.
std::string write_failure_hint(const std::string& path);

// Writes text to path.tmp-PID (created exclusively: Note [file safety]), fsyncs and renames it
// over path: readers see the old file or the new one, never a part. Throws (naming the disk as
// full when it is) and removes the temporary file on failure.
void write_file_atomically(const std::string& path, const std::string& text);

// fsyncs a directory, so that renames into or out of it survive a crash.
void sync_directory(const std::string& dir);

// Renames and fsyncs the directory, so the rename survives a crash.
void rename_durably(const std::string& from, const std::string& to);

// The whole file as bytes; empty if it does not exist or cannot be read (callers that need it
// check the content). Anything but a regular file (a FIFO would block) is an error naming it.
std::string read_file(const std::string& path);

// Names in dir (not . and ..), sorted; empty if dir does not exist.
std::vector<std::string> list_directory(const std::string& dir);

// True if no process with this PID exists on this host.
bool process_is_gone(long pid);

// dptrain's own temporary files of writers that died (Note [own temporaries] in
// safe_files.h). Called under the run lock; returns what it removed.
std::vector<std::string> remove_stale_temporaries(const std::string& dir);

}  // namespace dpt
