// The prepare swap: a new dataset built beside --out and put in place by one rename.
#pragma once
#include <string>
#include <vector>

namespace dpt {

// Note [prepare swap]: prepare writes the new files into a staging folder beside --out
// (PARENT/.NAME.prepare-HOST-PID, on the same filesystem), together with a manifest
// (.dptrain-dataset: the prepare id and the files it wrote). Files in --out that are not the
// previous dataset's (by its manifest; without one, dptrain-written shards by their
// attributes) are carried over by hard link, and then one renameat2(RENAME_EXCHANGE) swaps the
// two folders: at every instant --out holds one complete dataset, the old or the new. The old
// folder then loses only the previous dataset's files and is removed. A name in --out that
// the new dataset needs but that is not the previous dataset's is refused before anything
// changes. Where the filesystem cannot exchange folders (or --out is a mount point), files are
// renamed one by one instead (each atomically; a reader in between sees two prepare ids and
// refuses the mix by name). A prepare that dies leaves its staging folder, which the next
// prepare on that host removes (its PID is dead there and it is this user's).
constexpr const char* kDatasetManifest = ".dptrain-dataset";
// In a staging folder until the exchange: a dead prepare's folder with it holds only dptrain's
// files (and hard links); one without it may be the previous folder, holding the user's.
constexpr const char* kStagingMarker = ".dptrain-staging";

// Makes the staging folder for out_dir (removing dead prepares' ones) and returns its path.
std::string make_staging_folder(const std::string& out_dir);

// Puts the files `names` of staging in place as out_dir's dataset (see the Note). Returns a
// note for the console when the swap went file by file ("" otherwise).
std::string install_dataset(const std::string& staging, const std::string& out_dir,
                            const std::string& dataset, const std::string& prepare_id,
                            const std::vector<std::string>& names);

// Empties a staging folder (a dead prepare's, or this one's after a failure) of what dptrain
// put there: its shards, the manifest, hard links of files that also live in --out. Anything
// else (the user's folders on their way back after an interrupted swap) stays, with a note.
void discard_staging(const std::string& dir);

// The previous dataset's files in dir: its manifest's list; without a manifest, the files that
// a dptrain prepare wrote (shard names whose attributes say so).
std::vector<std::string> dataset_files_in(const std::string& dir, const std::string& dataset);

}  // namespace dpt
