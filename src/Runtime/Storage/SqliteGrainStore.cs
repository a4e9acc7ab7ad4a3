using ControlPlane.Runtime.Errors;
using Microsoft.Data.Sqlite;

namespace ControlPlane.Runtime.Storage;

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
        CREATE INDEX IF NOT EXISTS objects_by_index ON objects (kind, idx) WHERE idx <> '';
        CREATE TABLE IF NOT EXISTS changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            partition INTEGER NOT NULL, revision INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
            ns TEXT NOT NULL, idx TEXT NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL,
            UNIQUE (partition, revision));
        """;

    private readonly string _readConnectionString;
    private readonly SqliteConnection _writer;
    private readonly object _writerLock = new();
    private long[] _heads = [];
    private long[] _epochs = [];

    // Prepared statements of the writer connection, reused by every batch.
    private SqliteCommand? _insert, _update, _delete, _appendChange, _advance;

    public SqliteGrainStore(string path, bool synchronousFull = false)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }
        SQLitePCL.Batteries_V2.Init();
        var builder = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 };
        _readConnectionString = builder.ToString();
        _writer = new SqliteConnection(builder.ToString());
        _writer.Open();
        Execute(_writer, $"PRAGMA journal_mode=WAL; PRAGMA synchronous={(synchronousFull ? "FULL" : "NORMAL")}; PRAGMA busy_timeout=30000;");
        Execute(_writer, Schema);
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
            tx.Commit();
            _heads = heads;
            _epochs = epochs;
            PrepareWriterStatements();
            return new PartitionState(epochs, (long[])heads.Clone(), compacted);
        }
    }

    private void PrepareWriterStatements()
    {
        _insert = Prepare("INSERT INTO objects VALUES ($kind, $key, $ns, $idx, $p, $rev, $data) ON CONFLICT DO NOTHING",
            "$kind", "$key", "$ns", "$idx", "$p", "$rev", "$data");
        _update = Prepare("UPDATE objects SET ns = $ns, idx = $idx, revision = $rev, data = $data WHERE kind = $kind AND key = $key AND revision = $expected",
            "$kind", "$key", "$ns", "$idx", "$rev", "$data", "$expected");
        _delete = Prepare("DELETE FROM objects WHERE kind = $kind AND key = $key AND revision = $expected",
            "$kind", "$key", "$expected");
        _appendChange = Prepare("INSERT INTO changes (partition, revision, kind, key, ns, idx, type, data) VALUES ($p, $rev, $kind, $key, $ns, $idx, $type, $data)",
            "$p", "$rev", "$kind", "$key", "$ns", "$idx", "$type", "$data");
        _advance = Prepare("UPDATE partitions SET revision = $rev WHERE id = $p AND epoch = $epoch",
            "$rev", "$p", "$epoch");
    }

    private IEnumerable<SqliteCommand> WriterCommands() =>
        new[] { _insert, _update, _delete, _appendChange, _advance }.OfType<SqliteCommand>();

    private SqliteCommand Prepare(string sql, params string[] parameters)
    {
        var command = _writer.CreateCommand();
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }
        command.Prepare();
        return command;
    }

    public void Commit(IReadOnlyList<WriteRequest> batch, WriteOutcome[] outcomes, Change?[] changes)
    {
        lock (_writerLock)
        {
            var heads = (long[])_heads.Clone();
            var touched = new bool[heads.Length];
            try
            {
                using var tx = _writer.BeginTransaction();
                foreach (var command in WriterCommands())
                {
                    command.Transaction = tx;
                }
                for (var i = 0; i < batch.Count; i++)
                {
                    var w = batch[i];
                    changes[i] = null;
                    if (w.Epoch != _epochs[w.Partition])
                    {
                        outcomes[i] = WriteOutcome.Fenced;
                        continue;
                    }
                    var revision = heads[w.Partition] + 1;
                    int rows;
                    ChangeType type;
                    if (w.Data is null)
                    {
                        rows = Run(_delete!, w.Kind, w.Key, w.ExpectedRevision);
                        type = ChangeType.Deleted;
                    }
                    else if (w.ExpectedRevision == 0)
                    {
                        rows = Run(_insert!, w.Kind, w.Key, w.Namespace, w.Index, w.Partition, revision, w.Data);
                        type = ChangeType.Added;
                    }
                    else
                    {
                        rows = Run(_update!, w.Kind, w.Key, w.Namespace, w.Index, revision, w.Data, w.ExpectedRevision);
                        type = ChangeType.Modified;
                    }
                    if (rows == 0)
                    {
                        outcomes[i] = WriteOutcome.Conflict;
                        continue;
                    }
                    var data = w.Data ?? w.PreviousData ?? [];
                    Run(_appendChange!, w.Partition, revision, w.Kind, w.Key, w.Namespace, w.Index, (int)type, data);
                    heads[w.Partition] = revision;
                    touched[w.Partition] = true;
                    outcomes[i] = WriteOutcome.Committed;
                    changes[i] = new Change
                    {
                        Partition = w.Partition, Revision = revision, Kind = w.Kind, Key = w.Key, Type = type,
                        Data = data, Namespace = w.Namespace, Index = w.Index,
                    };
                }
                for (var p = 0; p < heads.Length; p++)
                {
                    if (touched[p] && Run(_advance!, heads[p], p, _epochs[p]) == 0)
                    {
                        // Another silo took the partition since we opened: nothing of this batch may commit.
                        tx.Rollback();
                        _epochs[p] = -1;
                        throw new ControlPlaneException(ErrorCode.Unavailable, $"partition {p} is owned by another silo");
                    }
                }
                tx.Commit();
                _heads = heads;
            }
            catch (SqliteException e)
            {
                throw new ControlPlaneException(ErrorCode.Unavailable, "the store could not commit", inner: e);
            }
        }
    }

    private static int Run(SqliteCommand command, params object[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters[i].Value = values[i];
        }
        return command.ExecuteNonQuery();
    }

    public StoredObject? Read(string kind, string key)
    {
        using var connection = OpenReader();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT partition, revision, data, ns, idx FROM objects WHERE kind = $kind AND key = $key";
        command.Parameters.AddWithValue("$kind", kind);
        command.Parameters.AddWithValue("$key", key);
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? new StoredObject(kind, key, reader.GetInt32(0), reader.GetInt64(1), (byte[])reader[2], reader.GetString(3), reader.GetString(4))
            : null;
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

    public IReadOnlyList<StoredObject> ListByIndex(string kind, string index)
    {
        using var connection = OpenReader();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT key, partition, revision, data, ns FROM objects WHERE kind = $kind AND idx = $idx AND idx <> ''";
        command.Parameters.AddWithValue("$kind", kind);
        command.Parameters.AddWithValue("$idx", index);
        var objects = new List<StoredObject>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            objects.Add(new StoredObject(kind, reader.GetString(0), reader.GetInt32(1), reader.GetInt64(2), (byte[])reader[3], reader.GetString(4), index));
        }
        return objects;
    }

    public ChangeRange ReadChanges(long[] after)
    {
        using var connection = OpenReader();
        using var tx = connection.BeginTransaction(deferred: true);
        var heads = ReadHeads(connection, out var compacted);
        if (after.Length != heads.Length)
        {
            throw ControlPlaneException.Invalid("resume_token", $"names {after.Length} partitions, the store has {heads.Length}");
        }
        for (var p = 0; p < heads.Length; p++)
        {
            if (after[p] < compacted[p])
            {
                throw new ControlPlaneException(ErrorCode.RevisionCompacted,
                    $"revision {after[p]} of partition {p} is older than the retained change log (compacted up to {compacted[p]}); list again");
            }
            if (after[p] > heads[p])
            {
                throw ControlPlaneException.Invalid("resume_token", $"revision {after[p]} of partition {p} is ahead of the store ({heads[p]})");
            }
        }
        // seq is the commit order across partitions: a resumed watch sees changes in the order live watchers did.
        var changes = new List<(long Seq, Change Change)>();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, revision, kind, key, ns, idx, type, data FROM changes WHERE partition = $p AND revision > $after ORDER BY revision";
        var partition = command.Parameters.Add(new SqliteParameter { ParameterName = "$p" });
        var from = command.Parameters.Add(new SqliteParameter { ParameterName = "$after" });
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
                    Data = (byte[])reader[7],
                }));
            }
        }
        changes.Sort(static (a, b) => a.Seq.CompareTo(b.Seq));
        return new ChangeRange([.. changes.Select(c => c.Change)], heads);
    }

    public long[] Compact(long retain)
    {
        lock (_writerLock)
        {
            using var tx = _writer.BeginTransaction();
            var heads = ReadHeads(_writer, out var compacted);
            using var drop = _writer.CreateCommand();
            drop.CommandText = "DELETE FROM changes WHERE partition = $p AND revision <= $upto; UPDATE partitions SET compacted = $upto WHERE id = $p";
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
            return compacted;
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
        lock (_writerLock)
        {
            foreach (var command in WriterCommands())
            {
                command.Dispose();
            }
            _writer.Dispose();
        }
        SqliteConnection.ClearAllPools();
    }
}
