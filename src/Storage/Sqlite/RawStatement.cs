using System.Text;
using ControlPlane.Storage.Errors;
using SQLitePCL;

namespace ControlPlane.Storage.Sqlite;

/// <summary>
/// A statement prepared once on the writer connection and stepped through SQLite's C API: the
/// commit path runs four of these per write, and ADO.NET's per-call reader machinery would cost
/// more than SQLite itself.
/// </summary>
internal sealed class RawStatement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _statement;

    public RawStatement(sqlite3 db, string sql)
    {
        _db = db;
        Check(raw.sqlite3_prepare_v2(db, sql, out _statement));
    }

    public RawStatement Bind(int index, long value)
    {
        Check(raw.sqlite3_bind_int64(_statement, index, value));
        return this;
    }

    /// <summary>Binds text, or SQL NULL for null.</summary>
    public RawStatement Bind(int index, string? value)
    {
        Check(value is null ? raw.sqlite3_bind_null(_statement, index) : raw.sqlite3_bind_text(_statement, index, value));
        return this;
    }

    public RawStatement Bind(int index, byte[] value)
    {
        Check(raw.sqlite3_bind_blob(_statement, index, value));
        return this;
    }

    /// <summary>Runs the statement to completion and returns the number of rows it changed.</summary>
    public int Execute()
    {
        try
        {
            var rc = raw.sqlite3_step(_statement);
            if (rc != raw.SQLITE_DONE)
            {
                Check(rc);
            }
            return raw.sqlite3_changes(_db);
        }
        finally
        {
            raw.sqlite3_reset(_statement);
            raw.sqlite3_clear_bindings(_statement);
        }
    }

    /// <summary>Runs a query and reads its first row, or returns null when it has none.</summary>
    public T? QuerySingle<T>(Func<Row, T> read) where T : struct
    {
        try
        {
            var rc = raw.sqlite3_step(_statement);
            if (rc == raw.SQLITE_ROW)
            {
                return read(new Row(_statement));
            }
            Check(rc);
            return null;
        }
        finally
        {
            raw.sqlite3_reset(_statement);
            raw.sqlite3_clear_bindings(_statement);
        }
    }

    /// <summary>The current row of a query, read by column index.</summary>
    public readonly struct Row(sqlite3_stmt statement)
    {
        public byte[] Blob(int column) => raw.sqlite3_column_blob(statement, column).ToArray();

        public string Text(int column) => raw.sqlite3_column_text(statement, column).utf8_to_string();

        public long Int64(int column) => raw.sqlite3_column_int64(statement, column);
    }

    private void Check(int rc)
    {
        if (rc is not (raw.SQLITE_OK or raw.SQLITE_ROW or raw.SQLITE_DONE))
        {
            throw new ControlPlaneException(ErrorCode.Unavailable, $"the store failed: {raw.sqlite3_errmsg(_db).utf8_to_string()} (SQLite code {rc})");
        }
    }

    public void Dispose() => _statement.Dispose();
}
