using System.Threading.Channels;
using ControlPlane.Storage.Errors;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Storage.Postgres;

/// <summary>
/// The store several silos share: PostgreSQL (Npgsql). Each silo group-commits its own grains'
/// writes; the database hands out each partition's revisions under that partition's row lock, so
/// two silos never issue the same revision and, within a partition, revision order is commit
/// order. A batch is three round trips: (1) lock the partitions it touches and the claim scopes it
/// writes (always in one order, so silos never deadlock), read the objects' revisions and the
/// claims that could overlap; (2) every row of every write that passed, the partition heads and
/// a NOTIFY; (3) commit. Every silo reads the change log back per partition (woken by
/// LISTEN/NOTIFY, see <see cref="WaitForChangesAsync"/>), so each learns every change.
/// </summary>
public sealed class PostgresGrainStore : IGrainStore, ISharedLog
{
    private const string Channel = "cp_changes";

    /// <summary>Longest a transaction of this store may sit idle between its round trips.</summary>
    public static readonly TimeSpan IdleInTransactionLimit = TimeSpan.FromSeconds(3);

    /// <summary>Longest a commit waits for another silo's partition or claim lock.</summary>
    public static readonly TimeSpan LockWaitLimit = TimeSpan.FromSeconds(10);
    private const long SchemaLock = 0x43505f534348454d; // "CP_SCHEM"

    /// <summary>
    /// The session lock that says which cluster uses the store: every silo holds it while it runs,
    /// shared when its cluster may have other silos on the store, exclusive when it is alone
    /// (see <see cref="_sole"/>).
    /// </summary>
    private const long ClusterLock = 0x43505f434c555354; // "CP_CLUST"

    /// <summary>
    /// The first key of the session locks that name the cluster of silos sharing the store (the
    /// second is a hash of <see cref="_cluster"/>): every such silo holds its cluster's, shared, and
    /// one that finds another cluster's held does not start.
    /// </summary>
    private const int ClusterIdentityLock = 0x43505f49; // "CP_I"

    private const string ListenerName = "controlplane-listen";

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS cp_meta (name text PRIMARY KEY, value text NOT NULL);
        CREATE TABLE IF NOT EXISTS cp_partitions (id int PRIMARY KEY, revision bigint NOT NULL, compacted bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS cp_objects (
            kind text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, ns text NOT NULL, idx text NOT NULL,
            partition int NOT NULL, revision bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY (kind, key));
        CREATE INDEX IF NOT EXISTS cp_objects_by_key ON cp_objects (key, kind);
        CREATE TABLE IF NOT EXISTS cp_changes (
            partition int NOT NULL, revision bigint NOT NULL, kind text NOT NULL, key text NOT NULL,
            ns text NOT NULL, idx text NOT NULL, type smallint NOT NULL, data bytea NOT NULL, PRIMARY KEY (partition, revision));
        -- Who wrote each change and the object's revision it replaced: an audit trail that shows
        -- every object's history is one unbroken chain, written by one silo at a time.
        ALTER TABLE cp_changes ADD COLUMN IF NOT EXISTS prev bigint NOT NULL DEFAULT 0;
        ALTER TABLE cp_changes ADD COLUMN IF NOT EXISTS writer text NOT NULL DEFAULT '';
        -- The index value a modification moved its object from (null: unchanged), for filtered watches.
        ALTER TABLE cp_changes ADD COLUMN IF NOT EXISTS previdx text;
        -- The commit order across partitions: taken as a row is written, under its partition's
        -- lock, so a write acknowledged before another began has the smaller number.
        CREATE SEQUENCE IF NOT EXISTS cp_change_seq;
        ALTER TABLE cp_changes ADD COLUMN IF NOT EXISTS seq bigint NOT NULL DEFAULT nextval('cp_change_seq');
        CREATE TABLE IF NOT EXISTS cp_claims (
            scope text COLLATE "C" NOT NULL, low bytea NOT NULL, high bytea NOT NULL, kind text NOT NULL, key text NOT NULL,
            PRIMARY KEY (scope, low));
        CREATE INDEX IF NOT EXISTS cp_claims_by_holder ON cp_claims (kind, key);
        CREATE TABLE IF NOT EXISTS cp_tombstones (
            kind text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, partition int NOT NULL, revision bigint NOT NULL,
            PRIMARY KEY (kind, key));
        CREATE INDEX IF NOT EXISTS cp_tombstones_by_revision ON cp_tombstones (partition, revision);
        """;

    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlDataSource _commits;
    // Unpooled twins of the two, for the one repeat of work whose pooled connection turned out dead.
    private readonly NpgsqlDataSource _freshReads;
    private readonly NpgsqlDataSource _freshCommits;
    // The listener's: unpooled, and with keepalives the server sends, so that the cluster lock of
    // a silo whose host died (no connection closed) is released within about 25 s, not hours.
    private readonly NpgsqlDataSource _listening;

    /// <summary>Read connections open at once per silo (the commit loop and the probe use a pool of their own).</summary>
    private const int ReadConnections = 24;
    private readonly SemaphoreSlim _readSlots = new(ReadConnections);
    private readonly string _connectionString;
    private readonly Channel<bool> _notified = System.Threading.Channels.Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _stop = new();
    private Task? _listener;
    private int _partitions;
    private ulong _storeId;
    private string _writer = string.Empty;

    /// <summary>
    /// Whether this silo must have the store to itself. A silo with embedded membership is a
    /// cluster of its own: a second one on the same store would activate the same grains again,
    /// so each takes the cluster lock exclusively and a second fails to start. Silos of a
    /// cluster with shared membership take it shared, so they start beside each other but not
    /// beside a silo that must be alone.
    /// </summary>
    private readonly bool _sole;

    /// <summary>
    /// The cluster this silo belongs to ("service id/cluster id"), for silos that share the store:
    /// silos of two clusters on one store would each activate the same grains, so only one
    /// cluster's silos may hold it at a time. Null: not checked (a sole silo's lock says it all).
    /// </summary>
    private readonly string? _cluster;

    /// <summary>Why the listener could not take the store, when it could not.</summary>
    private string? _conflict;

    /// <summary>
    /// Why this silo may not write (null while it may): the listener lost its connection, and
    /// with it the cluster lock, and a silo another cluster started in the meantime holds it now.
    /// </summary>
    private volatile string? _displaced;
    private NpgsqlConnection? _firstListener;

    /// <summary>
    /// The changes this silo committed, until the log reader reads them back. What the reader
    /// publishes are new objects read from the log; each takes from its twin here what the group
    /// committer stamps on a change in memory only (its commit time, for the watch lag, and its
    /// write's trace context). Changes other silos committed have neither. Bounded: a twin never
    /// read back (a commit whose outcome is in doubt) goes with the rest when there are too many.
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(int Partition, long Revision), Change> _committedHere = new();
    private const int MaxCommittedHere = 65_536;

    /// <summary>The connection string as the operator gave it, without its password, for messages.</summary>
    private readonly string _setting;

    public PostgresGrainStore(string connectionString, bool sole = false, string? cluster = null)
    {
        _sole = sole;
        _cluster = sole ? null : cluster;
        var given = new NpgsqlConnectionStringBuilder(connectionString);
        if (given.Password is not null) given.Password = "*****";
        _setting = given.ConnectionString;
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { MaxAutoPrepare = 32, AutoPrepareMinUsages = 2, MaxPoolSize = ReadConnections };
        _connectionString = builder.ConnectionString;
        // Reads (snapshots, change log pages, object loads) take no locks and may run slowly on
        // a loaded silo. Commits take partition and claim locks, and a silo that stops in the
        // middle of one (paused, partitioned away) must not keep them: commit sessions have the
        // server end a transaction left idle longer than a commit ever takes, and a commit waits
        // a bounded time for a lock, then fails UNAVAILABLE.
        _dataSource = NpgsqlDataSource.Create(_connectionString);
        builder.Options = $"{builder.Options} -c idle_in_transaction_session_timeout={(int)IdleInTransactionLimit.TotalMilliseconds} -c lock_timeout={(int)LockWaitLimit.TotalMilliseconds}".Trim();
        builder.ApplicationName = "controlplane-commit";
        builder.MaxPoolSize = 4;
        _commits = NpgsqlDataSource.Create(builder.ConnectionString);
        _freshCommits = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Pooling = false }.ConnectionString);
        _freshReads = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString);
        var listening = new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false, ApplicationName = _cluster is null ? ListenerName : $"{ListenerName} {_cluster}", KeepAlive = 10 };
        listening.Options = $"{listening.Options} -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3".Trim();
        _listening = NpgsqlDataSource.Create(listening.ConnectionString);
    }

    public PartitionState Open(string owner, int partitionCount)
    {
        _writer = owner;
        return Sync(() => OpenAsync(partitionCount));
    }

    private async Task<PartitionState> OpenAsync(int partitionCount)
    {
        // Before anything is written: a silo of another cluster on this store stops the start here.
        try
        {
            _firstListener = await OpenListenerAsync(CancellationToken.None).ConfigureAwait(false)
                ?? throw new ControlPlaneException(ErrorCode.FailedPrecondition, Conflict);
        }
        catch (Exception e) when (IsStoreFailure(e))
        {
            throw new ControlPlaneException(ErrorCode.Unavailable, $"the store cannot be reached (Store:Postgres {_setting}): {Reason(e)}; start it, or correct the setting", inner: e);
        }
        await using var connection = await ConnectAsync().ConfigureAwait(false);
        await using (var tx = await connection.BeginTransactionAsync().ConfigureAwait(false))
        {
            // Silos may start together: one of them creates the schema and the partitions.
            await ExecuteAsync(connection, tx, $"SELECT pg_advisory_xact_lock({SchemaLock})").ConfigureAwait(false);
            await ExecuteAsync(connection, tx, Schema).ConfigureAwait(false);
            await using var count = new NpgsqlCommand("SELECT value FROM cp_meta WHERE name = 'partitions'", connection, tx);
            if (await count.ExecuteScalarAsync().ConfigureAwait(false) is string stored)
            {
                partitionCount = int.Parse(stored, System.Globalization.CultureInfo.InvariantCulture);
            }
            else
            {
                await ExecuteAsync(connection, tx, $"INSERT INTO cp_meta VALUES ('partitions', '{partitionCount}')").ConfigureAwait(false);
                await ExecuteAsync(connection, tx, $"INSERT INTO cp_partitions SELECT g, 0, 0 FROM generate_series(0, {partitionCount - 1}) g").ConfigureAwait(false);
            }
            await using var id = new NpgsqlCommand("SELECT value FROM cp_meta WHERE name = 'store_id'", connection, tx);
            if (await id.ExecuteScalarAsync().ConfigureAwait(false) is not string storeId)
            {
                storeId = StoreIdentity.New();
                await ExecuteAsync(connection, tx, $"INSERT INTO cp_meta VALUES ('store_id', '{storeId}')").ConfigureAwait(false);
            }
            _storeId = StoreIdentity.Parse(storeId);
            await tx.CommitAsync().ConfigureAwait(false);
        }
        _partitions = partitionCount;
        var (heads, compacted) = await ReadHeadsAsync(connection, null).ConfigureAwait(false);
        _listener ??= Task.Run(() => ListenAsync(_stop.Token));
        // Several silos write every partition: there is no owner to fence (writes are checked
        // per object by revision and per claim by holder), so every epoch is 0.
        return new PartitionState(new long[partitionCount], heads, compacted, _storeId);
    }

    public StoredObject? Read(string kind, string key) => Sync(() => ReadAsync(kind, key).AsTask());

    public ValueTask<StoredObject?> ReadAsync(string kind, string key) => new(ReadingAsync(async connection =>
    {
        await using var command = new NpgsqlCommand("SELECT partition, revision, data, ns, idx FROM cp_objects WHERE kind = $1 AND key = $2", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = kind });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        return await reader.ReadAsync().ConfigureAwait(false)
            ? new StoredObject(kind, key, reader.GetInt32(0), reader.GetInt64(1), (byte[])reader[2], reader.GetString(3), reader.GetString(4))
            : null;
    }));

    public ValueTask<(StoredObject? Object, long DeletedRevision)> ReadForActivationAsync(string kind, string key) => new(ReadingAsync(async connection =>
    {
        // One round trip: the object's row, or its tombstone's (no data).
        await using var command = new NpgsqlCommand("""
            SELECT partition, revision, data, ns, idx FROM cp_objects WHERE kind = $1 AND key = $2
            UNION ALL SELECT partition, revision, NULL, '', '' FROM cp_tombstones WHERE kind = $1 AND key = $2
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = kind });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        if (!await reader.ReadAsync().ConfigureAwait(false)) return ((StoredObject?)null, 0L);
        return reader.IsDBNull(2)
            ? (null, reader.GetInt64(1))
            : (new StoredObject(kind, key, reader.GetInt32(0), reader.GetInt64(1), (byte[])reader[2], reader.GetString(3), reader.GetString(4)), 0);
    }));

    public void Commit(IReadOnlyList<WriteRequest> batch, WriteOutcome[] outcomes, Change?[] changes) =>
        Sync(async () =>
        {
            await CommitAsync(batch, outcomes, changes).ConfigureAwait(false);
            return true;
        });

    public async Task CommitAsync(IReadOnlyList<WriteRequest> batch, WriteOutcome[] outcomes, Change?[] changes)
    {
        if (_displaced is { } displaced) throw new ControlPlaneException(ErrorCode.Unavailable, displaced);
        // Once the server has answered the first round trip, the connection was alive, and a
        // failure after that may leave the commit in doubt: such a commit is never repeated.
        var answered = false;
        try
        {
            await OnLiveConnectionAsync(commit: true, async connection =>
            {
                await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
                var partitions = batch.Select(w => w.Partition).Distinct().Order().ToArray();
                // A delete locks its object's reference scope, and so does a write that requires that
                // object: the two never read what the other is about to change.
                var deletes = batch.Where(w => w.Data is null).Select(w => Claim.ReferenceScope(w.Kind, w.Key)).ToArray();
                var required = batch.Where(w => w.Data is not null && w.Requires is { Count: > 0 }).SelectMany(w => w.Requires!).Distinct().ToArray();
                var scopes = batch.Where(w => w.Data is not null && w.Claims is { Count: > 0 }).SelectMany(w => w.Claims!).Select(c => c.Scope)
                    .Concat(deletes).Concat(required.Select(r => Claim.ReferenceScope(r.Kind, r.Key))).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
                var emptied = batch.Select((w, i) => (w, i)).Where(x => x.w.Data is null && x.w.RequiresNone is not null).ToArray();

                // Round trip 1: locks in a fixed order, then everything the outcomes depend on.
                await using var read = new NpgsqlBatch(connection, tx);
                read.BatchCommands.Add(Command("SELECT id, revision, compacted FROM cp_partitions WHERE id = ANY($1) ORDER BY id FOR UPDATE", partitions));
                foreach (var scope in scopes)
                {
                    read.BatchCommands.Add(Command("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", scope));
                }
                read.BatchCommands.Add(Command("SELECT o.kind, o.key, o.revision FROM cp_objects o JOIN unnest($1::text[], $2::text[]) AS w(kind, key) ON o.kind = w.kind AND o.key = w.key",
                    batch.Select(w => w.Kind).ToArray(), batch.Select(w => w.Key).ToArray()));
                var creates = batch.Where(w => w.Data is not null && w.ExpectedRevision == 0).ToArray();
                if (creates.Length > 0)
                {
                    read.BatchCommands.Add(Command("SELECT t.kind, t.key, t.revision FROM cp_tombstones t JOIN unnest($1::text[], $2::text[]) AS w(kind, key) ON t.kind = w.kind AND t.key = w.key",
                        creates.Select(w => w.Kind).ToArray(), creates.Select(w => w.Key).ToArray()));
                }
                if (required.Length > 0)
                {
                    read.BatchCommands.Add(Command("SELECT o.kind, o.key FROM cp_objects o JOIN unnest($1::text[], $2::text[]) AS r(kind, key) ON o.kind = r.kind AND o.key = r.key",
                        required.Select(r => r.Kind).ToArray(), required.Select(r => r.Key).ToArray()));
                }
                foreach (var scope in deletes)
                {
                    read.BatchCommands.Add(Command("SELECT kind, key FROM cp_claims WHERE scope = $1 LIMIT 1", scope));
                }
                foreach (var (w, _) in emptied)
                {
                    var (kinds, prefix) = w.RequiresNone!.Value;
                    read.BatchCommands.Add(Command("SELECT kind, key FROM cp_objects WHERE kind = ANY($1) AND key >= $2 AND key < $3 LIMIT 1", kinds.ToArray(), prefix, Claim.PrefixEnd(prefix)));
                }
                var checks = new List<(int Write, Claim Claim)>();
                for (var i = 0; i < batch.Count; i++)
                {
                    if (batch[i].Data is null || batch[i].Claims is not { Count: > 0 } claims) continue;
                    foreach (var claim in claims)
                    {
                        read.BatchCommands.Add(Command("SELECT low, high, kind, key FROM cp_claims WHERE scope = $1 AND low <= $2 AND NOT (kind = $3 AND key = $4) ORDER BY low DESC LIMIT 1",
                            claim.Scope, claim.High, batch[i].Kind, batch[i].Key));
                        checks.Add((i, claim));
                    }
                }
                var heads = new Dictionary<int, long>();
                var compacted = new Dictionary<int, long>();
                var revisions = new Dictionary<(string, string), long>();
                var tombstones = new Dictionary<(string, string), long>();
                var neighbours = new ClaimHolder?[checks.Count];
                var alive = new Dictionary<(string, string), bool>();
                var referrers = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
                await using (var reader = await read.ExecuteReaderAsync().ConfigureAwait(false))
                {
                    answered = true;
                    while (await reader.ReadAsync().ConfigureAwait(false)) (heads[reader.GetInt32(0)], compacted[reader.GetInt32(0)]) = (reader.GetInt64(1), reader.GetInt64(2));
                    foreach (var _ in scopes) await reader.NextResultAsync().ConfigureAwait(false);
                    await reader.NextResultAsync().ConfigureAwait(false);
                    while (await reader.ReadAsync().ConfigureAwait(false)) revisions[(reader.GetString(0), reader.GetString(1))] = reader.GetInt64(2);
                    if (creates.Length > 0)
                    {
                        await reader.NextResultAsync().ConfigureAwait(false);
                        while (await reader.ReadAsync().ConfigureAwait(false)) tombstones[(reader.GetString(0), reader.GetString(1))] = reader.GetInt64(2);
                    }
                    if (required.Length > 0)
                    {
                        foreach (var r in required) alive[r] = false;
                        await reader.NextResultAsync().ConfigureAwait(false);
                        while (await reader.ReadAsync().ConfigureAwait(false)) alive[(reader.GetString(0), reader.GetString(1))] = true;
                    }
                    foreach (var scope in deletes)
                    {
                        await reader.NextResultAsync().ConfigureAwait(false);
                        if (await reader.ReadAsync().ConfigureAwait(false)) referrers[scope] = (reader.GetString(0), reader.GetString(1));
                    }
                    foreach (var (w, _) in emptied)
                    {
                        await reader.NextResultAsync().ConfigureAwait(false);
                        if (await reader.ReadAsync().ConfigureAwait(false)) referrers.TryAdd(Claim.ReferenceScope(w.Kind, w.Key), (reader.GetString(0), reader.GetString(1)));
                    }
                    for (var c = 0; c < checks.Count; c++)
                    {
                        await reader.NextResultAsync().ConfigureAwait(false);
                        if (await reader.ReadAsync().ConfigureAwait(false))
                        {
                            neighbours[c] = new ClaimHolder(new Claim(checks[c].Claim.Scope, (byte[])reader[0], (byte[])reader[1]), reader.GetString(2), reader.GetString(3));
                        }
                    }
                }

                // Outcomes, in batch order: writes of this batch see each other.
                var held = new Dictionary<string, List<ClaimHolder>>(StringComparer.Ordinal);
                var released = new HashSet<(string, string)>();
                await using var write = new NpgsqlBatch(connection, tx);
                var check = 0;
                for (var i = 0; i < batch.Count; i++)
                {
                    var w = batch[i];
                    changes[i] = null;
                    var current = revisions.GetValueOrDefault((w.Kind, w.Key));
                    var claimCount = w.Data is not null && w.Claims is { Count: > 0 } ? w.Claims.Count : 0;
                    var tombstone = tombstones.GetValueOrDefault((w.Kind, w.Key));
                    if (current != w.ExpectedRevision || (w.Data is null && current == 0) ||
                        (w.Data is not null && current == 0 && !w.SawTombstone(tombstone, compacted[w.Partition])))
                    {
                        outcomes[i] = WriteOutcome.Conflict;
                        check += claimCount;
                        continue;
                    }
                    if (claimCount > 0 && TakenBy(w, neighbours.AsSpan(check, claimCount), held, released) is { } holder)
                    {
                        w.TakenBy = holder;
                        outcomes[i] = WriteOutcome.ClaimTaken;
                        check += claimCount;
                        continue;
                    }
                    check += claimCount;
                    if (ReferenceRefused(w, alive, referrers, held, released) is { } refusal)
                    {
                        (outcomes[i], w.Reference) = refusal;
                        continue;
                    }
                    var revision = ++CollectionsMarshalGet(heads, w.Partition);
                    var type = w.Data is null ? ChangeType.Deleted : w.ExpectedRevision == 0 ? ChangeType.Added : ChangeType.Modified;
                    var data = w.Data ?? w.PreviousData ?? [];
                    switch (type)
                    {
                        case ChangeType.Added:
                            write.BatchCommands.Add(Command("INSERT INTO cp_objects VALUES ($1, $2, $3, $4, $5, $6, $7)", w.Kind, w.Key, w.Namespace, w.Index, w.Partition, revision, w.Data!));
                            if (tombstone != 0)
                            {
                                write.BatchCommands.Add(Command("DELETE FROM cp_tombstones WHERE kind = $1 AND key = $2", w.Kind, w.Key));
                                tombstones.Remove((w.Kind, w.Key));
                            }
                            break;
                        case ChangeType.Modified:
                            write.BatchCommands.Add(Command("UPDATE cp_objects SET ns = $3, idx = $4, revision = $5, data = $6 WHERE kind = $1 AND key = $2", w.Kind, w.Key, w.Namespace, w.Index, revision, w.Data!));
                            break;
                        default:
                            write.BatchCommands.Add(Command("DELETE FROM cp_objects WHERE kind = $1 AND key = $2", w.Kind, w.Key));
                            write.BatchCommands.Add(Command("INSERT INTO cp_tombstones VALUES ($1, $2, $3, $4) ON CONFLICT (kind, key) DO UPDATE SET partition = excluded.partition, revision = excluded.revision",
                                w.Kind, w.Key, w.Partition, revision));
                            tombstones[(w.Kind, w.Key)] = revision;
                            break;
                    }
                    var previousIndex = w.PreviousIndexFor(type);
                    write.BatchCommands.Add(Command("INSERT INTO cp_changes (partition, revision, kind, key, ns, idx, type, data, prev, writer, previdx) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                        w.Partition, revision, w.Kind, w.Key, w.Namespace, w.Index, (short)type, data, w.ExpectedRevision, _writer, (object?)previousIndex ?? DBNull.Value));
                    if (w.Data is null || w.Claims is not null)
                    {
                        if (type != ChangeType.Added)
                        {
                            write.BatchCommands.Add(Command("DELETE FROM cp_claims WHERE kind = $1 AND key = $2", w.Kind, w.Key));
                            released.Add((w.Kind, w.Key));
                        }
                        foreach (var claim in w.Data is null ? [] : w.Claims!)
                        {
                            write.BatchCommands.Add(Command("INSERT INTO cp_claims VALUES ($1, $2, $3, $4, $5)", claim.Scope, claim.Low, claim.High, w.Kind, w.Key));
                            (held.TryGetValue(claim.Scope, out var list) ? list : held[claim.Scope] = []).Add(new ClaimHolder(claim, w.Kind, w.Key));
                        }
                    }
                    revisions[(w.Kind, w.Key)] = w.Data is null ? 0 : revision;
                    alive[(w.Kind, w.Key)] = w.Data is not null;
                    outcomes[i] = WriteOutcome.Committed;
                    changes[i] = new Change
                    {
                        Partition = w.Partition, Revision = revision, Kind = w.Kind, Key = w.Key, Type = type,
                        Data = data, Namespace = w.Namespace, Index = w.Index, PreviousIndex = previousIndex,
                    };
                }
                if (write.BatchCommands.Count == 0)
                {
                    await tx.CommitAsync().ConfigureAwait(false);
                    return true;
                }
                // Round trip 2: the rows, the heads and the wake-up of every silo's reader.
                write.BatchCommands.Add(Command("UPDATE cp_partitions p SET revision = h.revision FROM unnest($1::int[], $2::bigint[]) AS h(id, revision) WHERE p.id = h.id",
                    heads.Keys.ToArray(), heads.Values.ToArray()));
                write.BatchCommands.Add(new NpgsqlBatchCommand($"NOTIFY {Channel}"));
                await write.ExecuteNonQueryAsync().ConfigureAwait(false);
                if (_committedHere.Count > MaxCommittedHere) _committedHere.Clear();
                for (var i = 0; i < batch.Count; i++)
                {
                    if (changes[i] is { } change) _committedHere[(change.Partition, change.Revision)] = change;
                }
                // Round trip 3.
                await tx.CommitAsync().ConfigureAwait(false);
                return true;
            }, () => answered).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e))
        {
            throw Unavailable("the store could not commit", e);
        }
    }

    /// <summary>
    /// Why the write breaks a reference, if it does, with the batch's earlier writes counted: an
    /// object it requires that does not exist (or was deleted earlier in the batch), or, for a
    /// delete, a claim that refers to the object (in the store, or taken earlier in the batch).
    /// A referrer in the store that gives its claims up earlier in the batch still counts: the
    /// delete is refused as if it had come first.
    /// </summary>
    private static (WriteOutcome, (string, string))? ReferenceRefused(WriteRequest w, Dictionary<(string, string), bool> alive,
        Dictionary<string, (string, string)> referrers, Dictionary<string, List<ClaimHolder>> held, HashSet<(string, string)> released)
    {
        if (w.Data is not null)
        {
            foreach (var r in w.Requires ?? [])
            {
                if (!alive.GetValueOrDefault(r)) return (WriteOutcome.Unreferenceable, r);
            }
            return null;
        }
        var scope = Claim.ReferenceScope(w.Kind, w.Key);
        if (referrers.TryGetValue(scope, out var referrer)) return (WriteOutcome.Referenced, referrer);
        if (held.TryGetValue(scope, out var inBatch) && inBatch.FirstOrDefault(h => !released.Contains((h.Kind, h.Key))) is { } holder)
        {
            return (WriteOutcome.Referenced, (holder.Kind, holder.Key));
        }
        // Created earlier in this batch under the delete's prefix.
        if (w.RequiresNone is { } none)
        {
            foreach (var ((kind, key), exists) in alive)
            {
                if (exists && none.Kinds.Contains(kind) && key.StartsWith(none.KeyPrefix, StringComparison.Ordinal)) return (WriteOutcome.Referenced, (kind, key));
            }
        }
        return null;
    }

    private static ref long CollectionsMarshalGet(Dictionary<int, long> heads, int partition) =>
        ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrNullRef(heads, partition);

    /// <summary>
    /// The holder of one of the write's claims, if any: another object in the store (unless that
    /// object gave its claims up earlier in this batch) or an earlier write of this batch.
    /// </summary>
    private static ClaimHolder? TakenBy(WriteRequest write, ReadOnlySpan<ClaimHolder?> neighbours, Dictionary<string, List<ClaimHolder>> held, HashSet<(string, string)> released)
    {
        for (var c = 0; c < write.Claims!.Count; c++)
        {
            var claim = write.Claims[c];
            if (neighbours[c] is { } n && n.Claim.High.AsSpan().SequenceCompareTo(claim.Low) >= 0)
            {
                // A claim given up earlier in this batch frees its value; behind a freed range
                // another claim could still overlap a new range, so a range is refused then.
                var freed = released.Contains((n.Kind, n.Key));
                if (!freed || !claim.Low.AsSpan().SequenceEqual(claim.High)) return n;
            }
            if (held.TryGetValue(claim.Scope, out var inBatch))
            {
                foreach (var other in inBatch)
                {
                    if ((other.Kind, other.Key) != (write.Kind, write.Key) && !released.Contains((other.Kind, other.Key)) &&
                        other.Claim.Low.AsSpan().SequenceCompareTo(claim.High) <= 0 && other.Claim.High.AsSpan().SequenceCompareTo(claim.Low) >= 0)
                    {
                        return other;
                    }
                }
            }
        }
        return null;
    }

    public ObjectPage List(IReadOnlyList<string> kinds, string? keyPrefix, string? afterKey, int limit) =>
        Sync(() => ListAsync(kinds, keyPrefix, afterKey, limit).AsTask());

    public ValueTask<ObjectPage> ListAsync(IReadOnlyList<string> kinds, string? keyPrefix, string? afterKey, int limit) => new(ReadingAsync(async connection =>
    {
        await using var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead).ConfigureAwait(false);
        var (heads, _) = await ReadHeadsAsync(connection, tx).ConfigureAwait(false);
        var prefix = keyPrefix ?? string.Empty;
        await using var command = new NpgsqlCommand("""
            SELECT kind, key, partition, revision, data, ns, idx FROM cp_objects
            WHERE kind = ANY($1) AND key > $2 AND ($3 = '' OR (key >= $3 AND key < $4))
            ORDER BY key, kind LIMIT $5
            """, connection, tx);
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. kinds] });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = afterKey ?? string.Empty });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = prefix });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = prefix + '\uffff' });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = limit == int.MaxValue ? long.MaxValue : limit + 1L });
        var objects = new List<StoredObject>();
        await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false))
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
    }));

    public IReadOnlyList<ClaimHolder> ListClaims(string scope) => Sync(() => ListClaimsAsync(scope).AsTask());

    public ValueTask<IReadOnlyList<ClaimHolder>> ListClaimsAsync(string scope) => new(ReadingAsync<IReadOnlyList<ClaimHolder>>(async connection =>
    {
        await using var command = new NpgsqlCommand("SELECT low, high, kind, key FROM cp_claims WHERE scope = $1 ORDER BY low", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = scope });
        var claims = new List<ClaimHolder>();
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            claims.Add(new ClaimHolder(new Claim(scope, (byte[])reader[0], (byte[])reader[1]), reader.GetString(2), reader.GetString(3)));
        }
        return claims;
    }));

    public ValueTask<ClaimHolder?> FindClaimAsync(string scope, byte[] low) => new(ReadingAsync(async connection =>
    {
        await using var command = new NpgsqlCommand("SELECT high, kind, key FROM cp_claims WHERE scope = $1 AND low = $2", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = scope });
        command.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = low });
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        return await reader.ReadAsync().ConfigureAwait(false)
            ? new ClaimHolder(new Claim(scope, low, (byte[])reader[0]), reader.GetString(1), reader.GetString(2))
            : null;
    }));

    public ChangeRange ReadChanges(long[] after, int limit) => Sync(() => ReadChangesAsync(after, limit));

    public Task<ChangeRange> ReadChangesAsync(long[] after, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return ReadingAsync(async connection =>
        {
            await using var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead).ConfigureAwait(false);
            var (heads, compacted) = await ReadHeadsAsync(connection, tx).ConfigureAwait(false);
            ChangeRange.RequireReadable(after, heads, compacted);
            var changes = new List<(long Seq, Change Change)>();
            var behind = Enumerable.Range(0, heads.Length).Where(p => after[p] < heads[p]).ToArray();
            if (behind.Length > 0)
            {
                await using var command = new NpgsqlCommand("""
                    SELECT c.partition, c.revision, c.kind, c.key, c.ns, c.idx, c.type, c.data, c.previdx, c.seq
                    FROM unnest($1::int[], $2::bigint[]) AS a(partition, after)
                    CROSS JOIN LATERAL (
                        SELECT * FROM cp_changes c WHERE c.partition = a.partition AND c.revision > a.after
                        ORDER BY c.revision LIMIT $3) c
                    """, connection, tx);
                command.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = behind });
                command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. behind.Select(p => after[p])] });
                command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
                await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
                while (await reader.ReadAsync().ConfigureAwait(false))
                {
                    var change = new Change
                    {
                        Partition = reader.GetInt32(0), Revision = reader.GetInt64(1), Kind = reader.GetString(2), Key = reader.GetString(3),
                        Namespace = reader.GetString(4), Index = reader.GetString(5), Type = (ChangeType)reader.GetInt16(6), Data = (byte[])reader[7],
                        PreviousIndex = reader.IsDBNull(8) ? null : reader.GetString(8),
                    };
                    if (_committedHere.TryRemove((change.Partition, change.Revision), out var twin) && twin.Kind == change.Kind && twin.Key == change.Key)
                    {
                        (change.CommittedAt, change.TraceContext) = (twin.CommittedAt, twin.TraceContext);
                    }
                    changes.Add((reader.GetInt64(9), change));
                }
            }
            return ChangeRange.InCommitOrder(changes, after, heads, limit);
        });
    }

    public string? ProbeWritable(long[] epochs, bool commit = false) => Sync(async () =>
    {
        if (_displaced is { } displaced) return $"the store cannot be written: {displaced}";
        try
        {
            // The probe changes nothing, so it may always be repeated on a new connection.
            return await OnLiveConnectionAsync(commit: true, async connection =>
            {
                await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
                await ExecuteAsync(connection, tx, "SELECT revision FROM cp_partitions WHERE id = 0 FOR UPDATE").ConfigureAwait(false);
                if (commit)
                {
                    await ExecuteAsync(connection, tx, "UPDATE cp_partitions SET revision = revision WHERE id = 0").ConfigureAwait(false);
                    await tx.CommitAsync().ConfigureAwait(false);
                }
                else
                {
                    await tx.RollbackAsync().ConfigureAwait(false);
                }
                return (string?)null;
            }, static () => false).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e) || e is ControlPlaneException)
        {
            return $"the store cannot be written: {Reason(e)}";
        }
    });

    public long[] Compact(long retain) => Sync(() => CompactAsync(retain));

    private Task<long[]> CompactAsync(long retain) => ReadingAsync(async connection =>
    {
        await using var command = new NpgsqlCommand("""
            WITH limits AS (SELECT id, revision - $1 AS upto FROM cp_partitions WHERE revision - $1 > compacted),
                 dropped AS (DELETE FROM cp_changes c USING limits l WHERE c.partition = l.id AND c.revision <= l.upto),
                 buried AS (DELETE FROM cp_tombstones t USING limits l WHERE t.partition = l.id AND t.revision <= l.upto)
            UPDATE cp_partitions p SET compacted = l.upto FROM limits l WHERE p.id = l.id
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = retain });
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        return (await ReadHeadsAsync(connection, null).ConfigureAwait(false)).Compacted;
    });

public async Task WaitForChangesAsync(TimeSpan timeout, CancellationToken cancellationToken)
{
    using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    timer.CancelAfter(timeout);
    try
    {
        await _notified.Reader.ReadAsync(timer.Token).ConfigureAwait(false);
    }
    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
    {
        // The timeout: read anyway (a notification can be lost while the listener reconnects).
    }
    }

    /// <summary>What a silo that may not share the store with the one holding it is told.</summary>
    private string Conflict => _conflict ?? (_sole
        ? "the store (Store:Postgres) is in use by another silo. A silo with Cluster:Membership=localhost is a cluster of its own and must have its store to itself; silos that share a store must all use Cluster:Membership=redis with one Cluster:Redis"
        : "the store (Store:Postgres) is in use by a silo with Cluster:Membership=localhost, which must have it to itself; stop that silo, or give this cluster another database");

    /// <summary>
    /// A connection of its own that holds this silo's cluster lock and LISTENs for changes; null
    /// when the lock is held by a silo this one may not share the store with.
    /// </summary>
    private async Task<NpgsqlConnection?> OpenListenerAsync(CancellationToken stop)
    {
        _conflict = null;
        // Unpooled: the lock is the session's, and ends only when the session does.
        var connection = _listening.CreateConnection();
        try
        {
            await connection.OpenAsync(stop).ConfigureAwait(false);
            await using (var take = new NpgsqlCommand($"SELECT {(_sole ? "pg_try_advisory_lock" : "pg_try_advisory_lock_shared")}({ClusterLock})", connection))
            {
                if (await take.ExecuteScalarAsync(stop).ConfigureAwait(false) is not true)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                    return null;
                }
            }
            if (_cluster is not null && await OtherClusterAsync(connection, stop).ConfigureAwait(false) is { } other)
            {
                _conflict = $"the store (Store:Postgres) is in use by the silos of another cluster ({other}); this silo's is '{_cluster}' " +
                    "(Cluster:ServiceId/Cluster:ClusterId). The silos of one cluster share one store, and two clusters never share one: " +
                    "give this silo its cluster's ServiceId and ClusterId, or another database";
                await connection.DisposeAsync().ConfigureAwait(false);
                return null;
            }
            connection.Notification += (_, _) => _notified.Writer.TryWrite(true);
            await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
            {
                await listen.ExecuteNonQueryAsync(stop).ConfigureAwait(false);
            }
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Takes this silo's cluster identity lock (shared) on <paramref name="connection"/>, then
    /// looks for another cluster's: the other cluster as its listener names itself, or null when
    /// there is none. Two clusters starting at once each see the other's lock, and neither starts.
    /// </summary>
    private async Task<string?> OtherClusterAsync(NpgsqlConnection connection, CancellationToken stop)
    {
        await using var take = new NpgsqlCommand(
            $"SELECT pg_advisory_lock_shared({ClusterIdentityLock}, hashtext(@cluster))", connection);
        take.Parameters.AddWithValue("cluster", _cluster!);
        await take.ExecuteNonQueryAsync(stop).ConfigureAwait(false);
        await using var look = new NpgsqlCommand(
            "SELECT coalesce(a.application_name, '') FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid " +
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 " +
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) " +
            $"AND l.classid = {ClusterIdentityLock}::oid AND l.objid <> hashtext(@cluster)::oid LIMIT 1", connection);
        look.Parameters.AddWithValue("cluster", _cluster!);
        return await look.ExecuteScalarAsync(stop).ConfigureAwait(false) is string name
            ? name.StartsWith(ListenerName + " ", StringComparison.Ordinal) ? $"'{name[(ListenerName.Length + 1)..]}'" : "another Cluster:ServiceId/Cluster:ClusterId"
            : null;
    }

    /// <summary>
    /// Keeps the listener's connection (and with it the cluster lock) open; reconnects after
    /// failures. A lock taken by another cluster's silo while the connection was down stops this
    /// silo's writes (<see cref="_displaced"/>) until it holds the lock again.
    /// </summary>
    private async Task ListenAsync(CancellationToken stop)
    {
        var connection = Interlocked.Exchange(ref _firstListener, null);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                connection ??= await OpenListenerAsync(stop).ConfigureAwait(false);
                if (connection is null)
                {
                    _displaced = Conflict;
                    await Task.Delay(TimeSpan.FromSeconds(1), stop).ConfigureAwait(false);
                    continue;
                }
                _displaced = null;
                _notified.Writer.TryWrite(true);
                await using (connection.ConfigureAwait(false))
                {
                    while (!stop.IsCancellationRequested)
                    {
                        await connection.WaitAsync(stop).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or IOException or InvalidOperationException)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(500), stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            finally
            {
                connection = null;
            }
        }
    }

    private async Task<(long[] Heads, long[] Compacted)> ReadHeadsAsync(NpgsqlConnection connection, NpgsqlTransaction? tx)
    {
        var heads = new long[_partitions];
        var compacted = new long[_partitions];
        await using var command = new NpgsqlCommand("SELECT id, revision, compacted FROM cp_partitions", connection, tx);
        await using var reader = await RunAsync(() => command.ExecuteReaderAsync()).ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            var p = reader.GetInt32(0);
            heads[p] = reader.GetInt64(1);
            compacted[p] = reader.GetInt64(2);
        }
        return (heads, compacted);
    }

    private static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }
        return command;
    }

    /// <summary>A read on a read connection (<see cref="OnLiveConnectionAsync"/>); a failure of the store is UNAVAILABLE.</summary>
    private async Task<T> ReadingAsync<T>(Func<NpgsqlConnection, Task<T>> read)
    {
        try
        {
            return await OnLiveConnectionAsync(commit: false, read, static () => false).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e))
        {
            throw Unavailable("the store failed", e);
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on a pooled connection (a commit connection when
    /// <paramref name="commit"/>, else a read connection). A pooled connection whose server side
    /// ended while it sat idle (PostgreSQL restarted or failed over, or something ended idle
    /// sessions) fails on its first use. Then both pools are cleared, since their other idle
    /// connections are as stale, and the work runs once more on a new, unpooled connection
    /// (others may still be handing stale ones back to the pool), unless the connection had
    /// <paramref name="answered"/> before it failed: a commit that failed after that may have
    /// happened, and is never repeated.
    /// </summary>
    private async Task<T> OnLiveConnectionAsync<T>(bool commit, Func<NpgsqlConnection, Task<T>> work, Func<bool> answered)
    {
        var connection = commit ? await _commits.OpenConnectionAsync().ConfigureAwait(false) : await ConnectAsync().ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            try
            {
                return await work(connection).ConfigureAwait(false);
            }
            catch (Exception) when (connection.FullState is System.Data.ConnectionState.Broken or System.Data.ConnectionState.Closed && !answered())
            {
                _dataSource.Clear();
                _commits.Clear();
            }
        }
        await using var fresh = await (commit ? _freshCommits : _freshReads).OpenConnectionAsync().ConfigureAwait(false);
        return await work(fresh).ConfigureAwait(false);
    }

    /// <summary>
    /// A read connection. At most <see cref="ReadConnections"/> are open at once; further reads
    /// (a thousand watchers starting together) wait here for one to close rather than fail on
    /// the pool's timeout or exhaust the server's connection limit.
    /// </summary>
    private async ValueTask<NpgsqlConnection> ConnectAsync(CancellationToken cancellationToken = default)
    {
        await _readSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        var released = 0;
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            connection.StateChange += (_, e) =>
            {
                if (e.CurrentState == System.Data.ConnectionState.Closed && Interlocked.Exchange(ref released, 1) == 0) _readSlots.Release();
            };
            return connection;
        }
        catch (Exception e) when (IsStoreFailure(e))
        {
            if (Interlocked.Exchange(ref released, 1) == 0) _readSlots.Release();
            throw Unavailable("the store cannot be reached", e);
        }
    }

    private static async Task<T> RunAsync<T>(Func<Task<T>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e))
        {
            throw Unavailable("the store failed", e);
        }
    }

    private static Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, string sql) => RunAsync(async () =>
    {
        await using var command = new NpgsqlCommand(sql, connection, tx);
        return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    });

    /// <summary>
    /// The blocking form of an operation, for callers that are not asynchronous (the group
    /// committer's thread, change feeds). It runs on the thread pool, whatever scheduler the
    /// caller is on, so it can never wait on a thread it blocks.
    /// </summary>
    private static T Sync<T>(Func<Task<T>> operation) => Task.Run(operation).GetAwaiter().GetResult();

    private static bool IsStoreFailure(Exception e) => e is NpgsqlException or InvalidOperationException or TimeoutException or IOException;

    private static ControlPlaneException Unavailable(string what, Exception e) =>
        new(ErrorCode.Unavailable, $"{what}: {Reason(e)}", inner: e);

    /// <summary>
    /// A failure of the store as one line for a caller: the server's SQLSTATE and message, without
    /// the driver's detail and advice to operators (the log keeps the whole exception).
    /// </summary>
    internal static string Reason(Exception e) => e switch
    {
        PostgresException pg => $"{pg.SqlState}: {pg.MessageText}",
        _ => e.Message.AsSpan().IndexOfAny('\r', '\n') is var end and >= 0 ? e.Message[..end] : e.Message,
    };

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _stop.Cancel();
        try
        {
            _listener?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The listener ends with its connection.
        }
        // Taken at open by a start that failed before the listener ran.
        Interlocked.Exchange(ref _firstListener, null)?.Dispose();
        _dataSource.Dispose();
        _commits.Dispose();
        _freshReads.Dispose();
        _listening.Dispose();
        _freshCommits.Dispose();
        _stop.Dispose();
    }
}
