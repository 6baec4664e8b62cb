// Backups of the lake with RocksDB's BackupEngine: taken from the open database while it takes
// writes, verified and restored offline.
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/utilities/backup_engine.h>

#include <filesystem>

#include "firehub/lake.h"
#include "lake/internal.h"

namespace firehub::lake {
namespace {

Status fromIo(const rocksdb::IOStatus& s, const std::string& what) {
  if (s.ok()) return Status::ok();
  if (s.IsCorruption()) return Status::dataLoss(what + ": " + s.ToString());
  if (s.IsNotFound()) return Status::notFound(what + ": " + s.ToString());
  if (s.IsInvalidArgument()) return Status::invalidArgument(what + ": " + s.ToString());
  return Status::unavailable(what + ": " + s.ToString());
}

BackupInfo infoOf(const rocksdb::BackupInfo& b) {
  return {b.backup_id, b.timestamp, b.size, b.number_files};
}

Result<std::unique_ptr<rocksdb::BackupEngineReadOnly>> openReadOnly(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(dir) / "meta", ec))
    return Status::notFound(dir + " holds no lake backup (no meta/ folder)");
  rocksdb::BackupEngineReadOnly* engine = nullptr;
  rocksdb::BackupEngineOptions options(dir);
  FIREHUB_RETURN_IF_ERROR(
      fromIo(rocksdb::BackupEngineReadOnly::Open(rocksdb::Env::Default(), options, &engine),
             "open backups in " + dir));
  return std::unique_ptr<rocksdb::BackupEngineReadOnly>(engine);
}

Result<uint32_t> chosen(rocksdb::BackupEngineReadOnly& engine, uint32_t id,
                        const std::string& dir) {
  std::vector<rocksdb::BackupInfo> all;
  engine.GetBackupInfo(&all);
  if (all.empty()) return Status::notFound(dir + " holds no backup");
  if (id == 0) return all.back().backup_id;
  for (const auto& b : all) {
    if (b.backup_id == id) return id;
  }
  return Status::notFound(dir + " holds no backup " + std::to_string(id));
}

}  // namespace

Result<BackupInfo> Lake::backup(const std::string& dir,
                                const std::function<void(uint64_t)>& progress,
                                uint64_t rate_limit_bytes) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::unavailable("backup folder " + dir + ": " + ec.message());
  rocksdb::BackupEngineOptions options(dir);
  options.sync = true;
  options.callback_trigger_interval_size = 1u << 20;
  // Copies at most this fast, so the WAL's fsyncs of the pushes meanwhile do not queue behind a
  // disk busy with the copy.
  options.backup_rate_limit = rate_limit_bytes;
  rocksdb::BackupEngine* raw = nullptr;
  FIREHUB_RETURN_IF_ERROR(
      fromIo(rocksdb::BackupEngine::Open(options, rocksdb::Env::Default(), &raw),
             "open backups in " + dir));
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  rocksdb::CreateBackupOptions create;
  create.flush_before_backup = true;  // what was committed is in the table files copied
  // The copy (and its checksums) runs below the hub's threads, as compactions do.
  create.decrease_background_thread_cpu_priority = true;
  create.background_thread_cpu_priority = rocksdb::CpuPriority::kLow;
  uint64_t steps = 0;
  create.progress_callback = [&] {
    ++steps;
    if (progress) progress(steps * options.callback_trigger_interval_size);
  };
  rocksdb::BackupID id = 0;
  FIREHUB_RETURN_IF_ERROR(
      fromIo(engine->CreateNewBackup(create, db_.get(), &id), "back up to " + dir));
  rocksdb::BackupInfo info;
  if (rocksdb::Status got = engine->GetBackupInfo(id, &info); !got.ok())
    return Status::unavailable("read backup " + std::to_string(id) + ": " + got.ToString());
  if (progress) progress(info.size);
  return infoOf(info);
}

Result<std::vector<BackupInfo>> listBackups(const std::string& dir) {
  auto engine = openReadOnly(dir);
  if (!engine.isOk()) return engine.status();
  std::vector<rocksdb::BackupInfo> all;
  engine.value()->GetBackupInfo(&all);
  std::vector<BackupInfo> out;
  for (const auto& b : all) out.push_back(infoOf(b));
  return out;
}

Status verifyBackup(const std::string& dir, uint32_t id) {
  auto engine = openReadOnly(dir);
  if (!engine.isOk()) return engine.status();
  auto which = chosen(*engine.value(), id, dir);
  if (!which.isOk()) return which.status();
  return fromIo(engine.value()->VerifyBackup(which.value(), /*verify_with_checksum=*/true),
                "backup " + std::to_string(which.value()) + " in " + dir);
}

Status restoreBackup(const std::string& dir, const std::string& lake_dir, uint32_t id) {
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::path(lake_dir) / "CURRENT", ec))
    return Status::alreadyExists(lake_dir + " holds a lake already: restore into a new data dir");
  auto engine = openReadOnly(dir);
  if (!engine.isOk()) return engine.status();
  auto which = chosen(*engine.value(), id, dir);
  if (!which.isOk()) return which.status();
  FIREHUB_RETURN_IF_ERROR(
      fromIo(engine.value()->VerifyBackup(which.value(), true),
             "backup " + std::to_string(which.value()) + " in " + dir + " (not restored)"));
  std::filesystem::create_directories(lake_dir, ec);
  return fromIo(engine.value()->RestoreDBFromBackup(which.value(), lake_dir, lake_dir),
                "restore backup " + std::to_string(which.value()) + " to " + lake_dir);
}

}  // namespace firehub::lake
