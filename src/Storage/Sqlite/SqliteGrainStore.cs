using ControlPlane.Storage.Errors;
using Microsoft.Data.Sqlite;

namespace ControlPlane.Storage.Sqlite;

/// <summary>
/// The embedded store: one SQLite database file in WAL mode. Commits go through one long-lived
/// writer connection (only the group committer writes); reads use pooled connections, which
/// WAL lets run beside the writer. synchronous=NORMAL: a committed transaction is in the WAL
/// file before the call returns, so it survives the process being killed; set
/// <c>SynchronousFull</c> to survive power loss as well.
/// </summary>
public sealed class SqliteGrainStore : IGrainStore
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS partitions (
            id INTEGER PRIMARY KEY, owner TEXT NOT NULL, epoch INTEGER NOT NULL,
            revision INTEGER NOT NULL, compacted INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS objects (
            kind TEXT NOT NULL, key TEXT NOT NULL, ns TEXT NOT NULL, idx TEXT NOT NULL,
            partition INTEGER NOT NULL, revision INTEGER NOT NULL, data BLOB NOT NULL,
            PRIMARY KEY (kind, key)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS changes (
            partition INTEGER NOT NULL, revision INTEGER NOT NULL, seq INTEGER NOT NULL,
            kind TEXT NOT NULL, key TEXT NOT NULL, ns TEXT NOT NULL, idx TEXT NOT NULL,
            type INTEGER NOT NULL, data BLOB NOT NULL, previdx TEXT,
            PRIMARY KEY (partition, revision)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS claims (
            scope TEXT NOT NULL, low BLOB NOT NULL, high BLOB NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
            PRIMARY KEY (scope, low)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS claims_by_holder ON claims (kind, key);
        CREATE TABLE IF NOT EXISTS tombstones (
            kind TEXT NOT NULL, key TEXT NOT NULL, partition INTEGER NOT NULL, revision INTEGER NOT NULL,
            PRIMARY KEY (kind, key)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS tombstones_by_revision ON tombstones (partition, revision);
        """;

    private readonly string _readConnectionString;
    private readonly SqliteConnection _writer;
    private readonly object _writerLock = new();
    private static readonly TimeSpan CheckpointInterval = TimeSpan.FromSeconds(1);
    private readonly System.Collections.Concurrent.ConcurrentBag<PreparedReader> _readers = [];
    private readonly Timer _checkpointer;
    // 0 idle, 1 a checkpoint runs, 2 closed (no checkpoint may start).
    private int _checkpointing;
    private int _commitsSinceWalCheck;
    private const long WalRestartBytes = 64L * 1024 * 1024;
    // After a failed commit, the free space that counts as recovered: room for a full batch of
    // writes (the space a failed commit left allocated in the WAL lets a small probe through on a
    // disk that is still full).
    private const long RecoveredFreeBytes = 4L * 1024 * 1024;
    private readonly string _directory;
    // The database file: a commit while it is gone from its directory (removed while the silo
    // ran) would go into a file no later start opens, so none is made.
    private readonly string _file;
    private long[] _heads = [];
    private long[] _epochs = [];
    private long[] _compacted = [];
    // Commit order across partitions (the log's seq column): replayed watches keep live order.
    private long _seq;

    // Prepared statements of the writer connection, reused by every batch.
    private RawStatement? _insert, _update, _delete, _appendChange, _advance, _claimNeighbour, _dropClaims, _addClaim, _tombstone, _bury, _unbury, _exists, _referrer, _under;

    public SqliteGrainStore(string path, bool synchronousFull = false)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }
        _directory = string.IsNullOrEmpty(directory) ? "." : directory;
        SQLitePCL.Batteries_V2.Init();
        var builder = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 };
        _readConnectionString = builder.ToString();
        _writer = new SqliteConnection(builder.ToString());
        _writer.Open();
        _file = Path.GetFullPath(path);
        // 2 KiB pages: a batch of random-key inserts rewrites every page it touches into the WAL,
        // and smaller pages halve those bytes (measured: +30% commit rate over 4 KiB).
        // Checkpoints (copying the WAL into the database, with an fsync) would stall the commit
        // thread; they run from a timer on their own connection instead.
        Execute(_writer, $"PRAGMA page_size=2048; PRAGMA journal_mode=WAL; PRAGMA synchronous={(synchronousFull ? "FULL" : "NORMAL")}; PRAGMA busy_timeout=30000; PRAGMA wal_autocheckpoint=0;");
        Execute(_writer, Schema);
        // A store made before changes recorded the index they moved from gains the column (null in its old records: unchanged).
        if (Scalar(_writer, "SELECT count(*) FROM pragma_table_info('changes') WHERE name = 'previdx'") is 0L)
        {
            Execute(_writer, "ALTER TABLE changes ADD COLUMN previdx TEXT");
        }
        _checkpointer = new Timer(_ => Checkpoint(), null, CheckpointInterval, CheckpointInterval);
    }

    public PartitionState Open(string owner, int partitionCount)
    {
        lock (_writerLock)
        {
            using var tx = _writer.BeginTransaction();
            var stored = Scalar(_writer, "SELECT value FROM meta WHERE name = 'partitions'");
            if (stored is null)
            {
                Execute(_writer, $"INSERT INTO meta VALUES ('partitions', '{partitionCount}')");
                for (var p = 0; p < partitionCount; p++)
                {
                    Execute(_writer, $"INSERT INTO partitions VALUES ({p}, '', 0, 0, 0)");
                }
            }
            else
            {
                partitionCount = int.Parse((string)stored, System.Globalization.CultureInfo.InvariantCulture);
            }
            using (var take = _writer.CreateCommand())
            {
                take.CommandText = "UPDATE partitions SET owner = $owner, epoch = epoch + 1";
                take.Parameters.AddWithValue("$owner", owner);
                take.ExecuteNonQuery();
            }
            var epochs = new long[partitionCount];
            var heads = new long[partitionCount];
            var compacted = new long[partitionCount];
            using (var read = _writer.CreateCommand())
            {
                read.CommandText = "SELECT id, epoch, revision, compacted FROM partitions ORDER BY id";
                using var reader = read.ExecuteReader();
                while (reader.Read())
                {
                    var p = reader.GetInt32(0);
                    epochs[p] = reader.GetInt64(1);
                    heads[p] = reader.GetInt64(2);
                    compacted[p] = reader.GetInt64(3);
                }
            }
            if (Scalar(_writer, "SELECT value FROM meta WHERE name = 'store_id'") is not string storeId)
            {
                storeId = StoreIdentity.New();
                Execute(_writer, $"INSERT INTO meta VALUES ('store_id', '{storeId}')");
            }
            _seq = Scalar(_writer, "SELECT coalesce(max(seq), 0) FROM changes") is long seq ? seq : 0;
            tx.Commit();
            _heads = heads;
            _epochs = epochs;
            _compacted = (long[])compacted.Clone();
            PrepareWriterStatements();
            return new PartitionState(epochs, (long[])heads.Clone(), compacted, StoreIdentity.Parse(storeId));
        }
    }

    private void PrepareWriterStatements()
    {
        var db = _writer.Handle!;
        _insert = new RawStatement(db, "INSERT INTO objects VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING");
        _update = new RawStatement(db, "UPDATE objects SET ns = ?3, idx = ?4, revision = ?6, data = ?7 WHERE kind = ?1 AND key = ?2 AND revision = ?8");
        _delete = new RawStatement(db, "DELETE FROM objects WHERE kind = ?1 AND key = ?2 AND revision = ?8");
        _appendChange = new RawStatement(db, "INSERT INTO changes (partition, revision, seq, kind, key, ns, idx, type, data, previdx) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
        _advance = new RawStatement(db, "UPDATE partitions SET revision = ?1 WHERE id = ?2 AND epoch = ?3");
        // Claims of one scope never overlap, so sorted by low they are sorted by high too: the only
        // claim of another holder that can overlap [low, high] is the one with the greatest low <= high.
        _claimNeighbour = new RawStatement(db, "SELECT low, high, kind, key FROM claims WHERE scope = ?1 AND low <= ?2 AND NOT (kind = ?3 AND key = ?4) ORDER BY low DESC LIMIT 1");
        _dropClaims = new RawStatement(db, "DELETE FROM claims WHERE kind = ?1 AND key = ?2");
        _addClaim = new RawStatement(db, "INSERT INTO claims VALUES (?1, ?2, ?3, ?4, ?5)");
        _exists = new RawStatement(db, "SELECT 1 FROM objects WHERE kind = ?1 AND key = ?2");
        _referrer = new RawStatement(db, "SELECT kind, key FROM claims WHERE scope = ?1 LIMIT 1");
        _under = new RawStatement(db, "SELECT key FROM objects WHERE kind = ?1 AND key >= ?2 AND key < ?3 LIMIT 1");
        _tombstone = new RawStatement(db, "SELECT revision FROM tombstones WHERE kind = ?1 AND key = ?2");
        _bury = new RawStatement(db, "INSERT INTO tombstones VALUES (?1, ?2, ?3, ?4) ON CONFLICT (kind, key) DO UPDATE SET partition = excluded.partition, revision = excluded.revision");
        _unbury = new RawStatement(db, "DELETE FROM tombstones WHERE kind = ?1 AND key = ?2");
    }

    private IEnumerable<RawStatement> WriterStatements() =>
        new[] { _insert, _update, _delete, _appendChange, _advance, _claimNeighbour, _dropClaims, _addClaim, _tombstone, _bury, _unbury, _exists, _referrer, _under }.OfType<RawStatement>();

    public void Commit(IReadOnlyList<WriteRequest> batch, WriteOutcome[] outcomes, Change?[] changes)
    {
        lock (_writerLock)
        {
            if (FileGone() is { } gone) throw new ControlPlaneException(ErrorCode.Unavailable, gone);
            var heads = (long[])_heads.Clone();
            var seq = _seq;
            var touched = new bool[heads.Length];
            try
            {
                using var tx = _writer.BeginTransaction();
                for (var i = 0; i < batch.Count; i++)
                {
                    var w = batch[i];
                    changes[i] = null;
                    if (w.Epoch != _epochs[w.Partition])
                    {
                        outcomes[i] = WriteOutcome.Fenced;
                        continue;
                    }
                    if (w.Data is not null && w.Claims is { Count: > 0 } && FindHolder(w) is { } holder)
                    {
                        w.TakenBy = holder;
                        outcomes[i] = WriteOutcome.ClaimTaken;
                        continue;
                    }
                    // References, in the same transaction as the write: earlier writes of the batch count.
                    if (w.Data is not null && w.Requires is { Count: > 0 } required && Missing(required) is { } missing)
                    {
                        w.Reference = missing;
                        outcomes[i] = WriteOutcome.Unreferenceable;
                        continue;
                    }
                    if (w.Data is null && (_referrer!.Bind(1, Claim.ReferenceScope(w.Kind, w.Key)).QuerySingle(static row => (row.Text(0), row.Text(1))) ?? Contained(w)) is { } referrer)
                    {
                        w.Reference = referrer;
                        outcomes[i] = WriteOutcome.Referenced;
                        continue;
                    }
                    var revision = heads[w.Partition] + 1;
                    int rows;
                    ChangeType type;
                    if (w.Data is null)
                    {
                        rows = _delete!.Bind(1, w.Kind).Bind(2, w.Key).Bind(8, w.ExpectedRevision).Execute();
                        if (rows > 0)
                        {
                            _bury!.Bind(1, w.Kind).Bind(2, w.Key).Bind(3, w.Partition).Bind(4, revision).Execute();
                        }
                        type = ChangeType.Deleted;
                    }
                    else if (w.ExpectedRevision == 0)
                    {
                        var tombstone = _tombstone!.Bind(1, w.Kind).Bind(2, w.Key).QuerySingle(static row => row.Int64(0)) ?? 0;
                        if (!w.SawTombstone(tombstone, _compacted[w.Partition]))
                        {
                            outcomes[i] = WriteOutcome.Conflict;
                            continue;
                        }
                        rows = _insert!.Bind(1, w.Kind).Bind(2, w.Key).Bind(3, w.Namespace).Bind(4, w.Index)
                            .Bind(5, w.Partition).Bind(6, revision).Bind(7, w.Data).Execute();
                        if (rows > 0 && tombstone != 0)
                        {
                            _unbury!.Bind(1, w.Kind).Bind(2, w.Key).Execute();
                        }
                        type = ChangeType.Added;
                    }
                    else
                    {
                        rows = _update!.Bind(1, w.Kind).Bind(2, w.Key).Bind(3, w.Namespace).Bind(4, w.Index)
                            .Bind(6, revision).Bind(7, w.Data).Bind(8, w.ExpectedRevision).Execute();
                        type = ChangeType.Modified;
                    }
                    if (rows == 0)
                    {
                        outcomes[i] = WriteOutcome.Conflict;
                        continue;
                    }
                    // A new object holds nothing yet; otherwise a delete drops its claims and a write with claims replaces them.
                    if (w.Data is null || w.Claims is not null)
                    {
                        ReplaceClaims(w, dropFirst: w.ExpectedRevision != 0);
                    }
                    var data = w.Data ?? w.PreviousData ?? [];
                    var previousIndex = w.PreviousIndexFor(type);
                    _appendChange!.Bind(1, w.Partition).Bind(2, revision).Bind(3, ++seq).Bind(4, w.Kind).Bind(5, w.Key)
                        .Bind(6, w.Namespace).Bind(7, w.Index).Bind(8, (long)type).Bind(9, data).Bind(10, previousIndex).Execute();
                    heads[w.Partition] = revision;
                    touched[w.Partition] = true;
                    outcomes[i] = WriteOutcome.Committed;
                    changes[i] = new Change
                    {
                        Partition = w.Partition, Revision = revision, Kind = w.Kind, Key = w.Key, Type = type,
                        Data = data, Namespace = w.Namespace, Index = w.Index, PreviousIndex = previousIndex,
                    };
                }
                for (var p = 0; p < heads.Length; p++)
                {
                    if (touched[p] && _advance!.Bind(1, heads[p]).Bind(2, p).Bind(3, _epochs[p]).Execute() == 0)
                    {
                        // Another silo took the partition since we opened: nothing of this batch may commit.
                        tx.Rollback();
                        _epochs[p] = -1;
                        throw new ControlPlaneException(ErrorCode.Unavailable, $"partition {p} is owned by another silo");
                    }
                }
                tx.Commit();
                _heads = heads;
                _seq = seq;
                BoundWal();
            }
            catch (SqliteException e)
            {
                throw new ControlPlaneException(ErrorCode.Unavailable, "the store could not commit", inner: e);
            }
        }
    }

    /// <summary>An object under a delete's <see cref="WriteRequest.RequiresNone"/>, if any.</summary>
    private (string Kind, string Key)? Contained(WriteRequest write)
    {
        if (write.RequiresNone is not { } none) return null;
        var end = Claim.PrefixEnd(none.KeyPrefix);
        foreach (var kind in none.Kinds)
        {
            if (_under!.Bind(1, kind).Bind(2, none.KeyPrefix).Bind(3, end).QuerySingle(static row => ValueTuple.Create(row.Text(0))) is { } found) return (kind, found.Item1);
        }
        return null;
    }

    /// <summary>The first of <paramref name="required"/> that does not exist, if any.</summary>
    private (string Kind, string Key)? Missing(IReadOnlyList<(string Kind, string Key)> required)
    {
        foreach (var (kind, key) in required)
        {
            if (_exists!.Bind(1, kind).Bind(2, key).QuerySingle(static row => row.Int64(0)) is null) return (kind, key);
        }
        return null;
    }

    /// <summary>The holder of a claim of <paramref name="write"/> other than the writing object itself, if any.</summary>
    private ClaimHolder? FindHolder(WriteRequest write)
    {
        foreach (var claim in write.Claims!)
        {
            // A reference claim's value is its holder's own identity: no other object holds it.
            if (claim.Scope.StartsWith(Claim.ReferenceScopePrefix, StringComparison.Ordinal)) continue;
            var neighbour = _claimNeighbour!.Bind(1, claim.Scope).Bind(2, claim.High).Bind(3, write.Kind).Bind(4, write.Key)
                .QuerySingle(static row => (High: row.Blob(1), Low: row.Blob(0), Kind: row.Text(2), Key: row.Text(3)));
            if (neighbour is { } n && n.High.AsSpan().SequenceCompareTo(claim.Low) >= 0)
            {
                return new ClaimHolder(new Claim(claim.Scope, n.Low, n.High), n.Kind, n.Key);
            }
        }
        return null;
    }

    private void ReplaceClaims(WriteRequest write, bool dropFirst)
    {
        if (dropFirst)
        {
            _dropClaims!.Bind(1, write.Kind).Bind(2, write.Key).Execute();
        }
        if (write.Data is null)
        {
            return;
        }
        foreach (var claim in write.Claims!)
        {
            _addClaim!.Bind(1, claim.Scope).Bind(2, claim.Low).Bind(3, claim.High).Bind(4, write.Kind).Bind(5, write.Key).Execute();
        }
    }

    // A local file answers in microseconds: the asynchronous forms run inline.
    public ValueTask<StoredObject?> ReadAsync(string kind, string key) => ValueTask.FromResult(Read(kind, key));

    public ValueTask<ObjectPage> ListAsync(IReadOnlyList<string> kinds, string? keyPrefix, string? afterKey, int limit) =>
        ValueTask.FromResult(List(kinds, keyPrefix, afterKey, limit));

    public ValueTask<IReadOnlyList<ClaimHolder>> ListClaimsAsync(string scope) => ValueTask.FromResult(ListClaims(scope));

    public Task<ChangeRange> ReadChangesAsync(long[] after, int limit) => Task.FromResult(ReadChanges(after, limit));

    public Task CommitAsync(IReadOnlyList<WriteRequest> batch, WriteOutcome[] outcomes, Change?[] changes)
    {
        Commit(batch, outcomes, changes);
        return Task.CompletedTask;
    }

    public StoredObject? Read(string kind, string key) => WithReader((kind, key), static (reader, k) => ReadObject(reader, k.kind, k.key));

    public ValueTask<(StoredObject? Object, long DeletedRevision)> ReadForActivationAsync(string kind, string key) =>
        ValueTask.FromResult(WithReader((kind, key), static (reader, k) => ReadObject(reader, k.kind, k.key) is { } found
            ? (found, 0L)
            : ((StoredObject?)null, reader.Tombstone.Bind(1, k.kind).Bind(2, k.key).QuerySingle(static r => r.Int64(0)) ?? 0)));

    private static StoredObject? ReadObject(PreparedReader reader, string kind, string key)
    {
        var row = reader.Object.Bind(1, kind).Bind(2, key)
            .QuerySingle(static r => (Partition: (int)r.Int64(0), Revision: r.Int64(1), Data: r.Blob(2), Namespace: r.Text(3), Index: r.Text(4)));
        return row is { } found ? new StoredObject(kind, key, found.Partition, found.Revision, found.Data, found.Namespace, found.Index) : null;
    }

    /// <summary>
    /// Every activation reads its object, and creates read what they refer to: a pool of
    /// connections, each with its statements prepared once and stepped through SQLite's C API.
    /// </summary>
    private TResult WithReader<TArg, TResult>(TArg arg, Func<PreparedReader, TArg, TResult> read)
    {
        if (!_readers.TryTake(out var prepared))
        {
            prepared = new PreparedReader(OpenReader());
        }
        try
        {
            return read(prepared, arg);
        }
        catch (ControlPlaneException)
        {
            prepared.Dispose();
            prepared = null;
            throw;
        }
        finally
        {
            if (prepared is not null) _readers.Add(prepared);
        }
    }

    private sealed class PreparedReader : IDisposable
    {
        public PreparedReader(SqliteConnection connection)
        {
            Connection = connection;
            Object = new RawStatement(connection.Handle!, "SELECT partition, revision, data, ns, idx FROM objects WHERE kind = ?1 AND key = ?2");
            Tombstone = new RawStatement(connection.Handle!, "SELECT revision FROM tombstones WHERE kind = ?1 AND key = ?2");
        }

        public SqliteConnection Connection { get; }

        public RawStatement Object { get; }

        public RawStatement Tombstone { get; }

        public void Dispose()
        {
            Object.Dispose();
            Tombstone.Dispose();
            Connection.Dispose();
        }
    }

    public ObjectPage List(IReadOnlyList<string> kinds, string? keyPrefix, string? afterKey, int limit)
    {
        using var connection = OpenReader();
        using var tx = connection.BeginTransaction(deferred: true);
        var heads = ReadHeads(connection, out _);
        using var command = connection.CreateCommand();
        var kindList = string.Join(", ", kinds.Select((_, i) => "$k" + i));
        command.CommandText = $"""
            SELECT kind, key, partition, revision, data, ns, idx FROM objects
            WHERE kind IN ({kindList}) AND key > $after AND ($prefix = '' OR (key >= $prefix AND key < $prefixEnd))
            ORDER BY key, kind LIMIT $limit
            """;
        for (var i = 0; i < kinds.Count; i++)
        {
            command.Parameters.AddWithValue("$k" + i, kinds[i]);
        }
        var prefix = keyPrefix ?? string.Empty;
        command.Parameters.AddWithValue("$after", afterKey ?? string.Empty);
        command.Parameters.AddWithValue("$prefix", prefix);
        command.Parameters.AddWithValue("$prefixEnd", prefix + '\uffff');
        command.Parameters.AddWithValue("$limit", limit == int.MaxValue ? -1 : limit + 1L);
        var objects = new List<StoredObject>();
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                objects.Add(new StoredObject(reader.GetString(0), reader.GetString(1), reader.GetInt32(2), reader.GetInt64(3),
                    (byte[])reader[4], reader.GetString(5), reader.GetString(6)));
            }
        }
        var hasMore = limit != int.MaxValue && objects.Count > limit;
        if (hasMore)
        {
            objects.RemoveAt(objects.Count - 1);
        }
        return new ObjectPage(objects, heads, hasMore);
    }

    public IReadOnlyList<ClaimHolder> ListClaims(string scope)
    {
        using var connection = OpenReader();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT low, high, kind, key FROM claims WHERE scope = $scope ORDER BY low";
        command.Parameters.AddWithValue("$scope", scope);
        var claims = new List<ClaimHolder>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            claims.Add(new ClaimHolder(new Claim(scope, (byte[])reader[0], (byte[])reader[1]), reader.GetString(2), reader.GetString(3)));
        }
        return claims;
    }

    public ValueTask<ClaimHolder?> FindClaimAsync(string scope, byte[] low)
    {
        using var connection = OpenReader();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT high, kind, key FROM claims WHERE scope = $scope AND low = $low";
        command.Parameters.AddWithValue("$scope", scope);
        command.Parameters.AddWithValue("$low", low);
        using var reader = command.ExecuteReader();
        return ValueTask.FromResult(reader.Read()
            ? new ClaimHolder(new Claim(scope, low, (byte[])reader[0]), reader.GetString(1), reader.GetString(2))
            : null);
    }

    public ChangeRange ReadChanges(long[] after, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        using var connection = OpenReader();
        using var tx = connection.BeginTransaction(deferred: true);
        var heads = ReadHeads(connection, out var compacted);
        ChangeRange.RequireReadable(after, heads, compacted);
        // seq is the commit order across partitions: a resumed watch sees changes in the order live watchers did.
        var changes = new List<(long Seq, Change Change)>();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, revision, kind, key, ns, idx, type, data, previdx FROM changes WHERE partition = $p AND revision > $after ORDER BY revision LIMIT $limit";
        var partition = command.Parameters.Add(new SqliteParameter { ParameterName = "$p" });
        var from = command.Parameters.Add(new SqliteParameter { ParameterName = "$after" });
        command.Parameters.AddWithValue("$limit", limit);
        for (var p = 0; p < heads.Length; p++)
        {
            if (after[p] == heads[p])
            {
                continue;
            }
            partition.Value = p;
            from.Value = after[p];
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                changes.Add((reader.GetInt64(0), new Change
                {
                    Partition = p, Revision = reader.GetInt64(1), Kind = reader.GetString(2), Key = reader.GetString(3),
                    Namespace = reader.GetString(4), Index = reader.GetString(5), Type = (ChangeType)reader.GetInt32(6),
                    Data = (byte[])reader[7], PreviousIndex = reader.IsDBNull(8) ? null : reader.GetString(8),
                }));
            }
        }
        return ChangeRange.InCommitOrder(changes, after, heads, limit);
    }

    private string? FileGone() => File.Exists(_file) ? null : $"the store's database file {_file} is gone (removed while the silo ran); restart the silo";

    public string? ProbeWritable(long[] epochs, bool commit = false)
    {
        lock (_writerLock)
        {
            if (FileGone() is { } gone) return gone;
            try
            {
                using var tx = _writer.BeginTransaction(deferred: false);
                using (var command = _writer.CreateCommand())
                {
                    command.CommandText = "SELECT id, epoch FROM partitions ORDER BY id";
                    using var reader = command.ExecuteReader();
                    while (reader.Read())
                    {
                        var p = reader.GetInt32(0);
                        if (p < epochs.Length && reader.GetInt64(1) != epochs[p])
                        {
                            return $"partition {p} is owned by another silo";
                        }
                    }
                }
                if (commit)
                {
                    var free = new DriveInfo(_directory).AvailableFreeSpace;
                    if (free < RecoveredFreeBytes)
                    {
                        return $"the store cannot be written: {free} bytes are free on the file system of {_directory}, and it needs {RecoveredFreeBytes}";
                    }
                    // A value that differs from the last probe's: SQLite writes nothing for an update
                    // that leaves a row's bytes as they were, and such a commit proves nothing.
                    using var touch = _writer.CreateCommand();
                    touch.CommandText = "INSERT INTO meta (name, value) VALUES ('probe', $at) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
                    touch.Parameters.AddWithValue("$at", DateTime.UtcNow.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    touch.ExecuteNonQuery();
                    tx.Commit();
                }
                return null;
            }
            catch (Exception e) when (e is SqliteException or InvalidOperationException)
            {
                return $"the store cannot be written: {e.Message}";
            }
        }
    }

    public long[] Compact(long retain)
    {
        lock (_writerLock)
        {
            using var tx = _writer.BeginTransaction();
            var heads = ReadHeads(_writer, out var compacted);
            using var drop = _writer.CreateCommand();
            // A delete's tombstone goes with its change record (see WriteRequest.DeletedRevision).
            drop.CommandText = "DELETE FROM changes WHERE partition = $p AND revision <= $upto; DELETE FROM tombstones WHERE partition = $p AND revision <= $upto; UPDATE partitions SET compacted = $upto WHERE id = $p";
            var partition = drop.Parameters.Add(new SqliteParameter { ParameterName = "$p" });
            var upto = drop.Parameters.Add(new SqliteParameter { ParameterName = "$upto" });
            for (var p = 0; p < heads.Length; p++)
            {
                var limit = heads[p] - retain;
                if (limit > compacted[p])
                {
                    partition.Value = p;
                    upto.Value = limit;
                    drop.ExecuteNonQuery();
                    compacted[p] = limit;
                }
            }
            tx.Commit();
            _compacted = (long[])compacted.Clone();
            return compacted;
        }
    }

    /// <summary>
    /// Under a steady stream of commits a passive checkpoint never catches the writer, so the WAL
    /// would only grow: past <see cref="WalRestartBytes"/> the writer itself finishes the
    /// checkpoint (most frames are already copied by the background one) and restarts the WAL.
    /// </summary>
    private void BoundWal()
    {
        if (++_commitsSinceWalCheck < 64)
        {
            return;
        }
        _commitsSinceWalCheck = 0;
        if (new FileInfo(_writer.DataSource + "-wal") is { Exists: true, Length: > WalRestartBytes })
        {
            Execute(_writer, "PRAGMA wal_checkpoint(RESTART)");
        }
    }

    /// <summary>
    /// Copies committed WAL frames into the database without blocking the writer (PASSIVE). When
    /// the log has grown large, a TRUNCATE checkpoint resets it (it waits for readers briefly).
    /// </summary>
    public void Checkpoint()
    {
        if (Interlocked.CompareExchange(ref _checkpointing, 1, 0) != 0)
        {
            return;
        }
        try
        {
            using var connection = OpenReader();
            var walBytes = new FileInfo(connection.DataSource + "-wal") is { Exists: true } wal ? wal.Length : 0;
            Execute(connection, walBytes > 256L * 1024 * 1024 ? "PRAGMA wal_checkpoint(TRUNCATE)" : "PRAGMA wal_checkpoint(PASSIVE)");
        }
        catch (Exception e) when (e is SqliteException or ControlPlaneException or ObjectDisposedException)
        {
            // Retried on the next tick; the WAL only grows meanwhile.
        }
        finally
        {
            Volatile.Write(ref _checkpointing, 0);
        }
    }

    private static long[] ReadHeads(SqliteConnection connection, out long[] compacted)
    {
        var heads = new List<long>();
        var low = new List<long>();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT revision, compacted FROM partitions ORDER BY id";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            heads.Add(reader.GetInt64(0));
            low.Add(reader.GetInt64(1));
        }
        compacted = [.. low];
        return [.. heads];
    }

    private SqliteConnection OpenReader()
    {
        try
        {
            var connection = new SqliteConnection(_readConnectionString);
            connection.Open();
            return connection;
        }
        catch (SqliteException e)
        {
            throw new ControlPlaneException(ErrorCode.Unavailable, "the store cannot be read", inner: e);
        }
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    public void Dispose()
    {
        // A checkpoint still running would open a connection after the store is closed, and
        // recreate the WAL files of a database that its owner may be deleting: wait for it, and
        // mark the store closed so that no later one (the timer's or a caller's) starts.
        _checkpointer.Dispose();
        SpinWait.SpinUntil(() => Interlocked.CompareExchange(ref _checkpointing, 2, 0) != 1);
        lock (_writerLock)
        {
            foreach (var statement in WriterStatements())
            {
                statement.Dispose();
            }
            _writer.Dispose();
        }
        while (_readers.TryTake(out var reader))
        {
            reader.Dispose();
        }
        SqliteConnection.ClearAllPools();
    }
}
