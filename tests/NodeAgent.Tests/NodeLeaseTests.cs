using ControlPlane.Contracts.Client;
using ControlPlane.NodeAgent.Lease;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>The lease's log while the control plane is away, as an operator reads it.</summary>
public sealed class NodeLeaseTests
{
    /// <summary>
    /// An outage is one warning, whatever the number of retries in it (each retry is a debug line):
    /// the lease warned on every retry, about 360 lines an hour at the longest backoff.
    /// </summary>
    [Fact]
    public async Task ControlPlaneAway_IsOneWarning_ItsRetriesDebugLines()
    {
        using var nowhere = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        nowhere.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        // Bound, never listening: every connection is refused at once.
        var options = new AgentOptions
        {
            ControlPlane = $"http://127.0.0.1:{((System.Net.IPEndPoint)nowhere.LocalEndPoint!).Port}",
            NodeName = "lease-log",
            UnderlayIp = "127.0.0.1",
            MaxBackoff = TimeSpan.FromMilliseconds(200),
        };
        var log = new RecordingLogger();
        using var client = new ControlPlaneClient(options.ControlPlane);
        using var lease = new NodeLease(client, options, log);
        await lease.StartAsync(CancellationToken.None);
        try
        {
            await log.WaitAsync(lines => lines.Count(l => l.Level == LogLevel.Debug && l.Text.Contains("still unreachable", StringComparison.Ordinal)) >= 3,
                TimeSpan.FromSeconds(60));
        }
        finally
        {
            await lease.StopAsync(CancellationToken.None);
        }
        var warnings = log.Lines.Where(l => l.Level >= LogLevel.Warning).ToList();
        var warning = Assert.Single(warnings);
        Assert.Contains($"Control plane {options.ControlPlane} unreachable (Unavailable)", warning.Text);
    }

    private sealed class RecordingLogger : ILogger<NodeLease>
    {
        private readonly List<(LogLevel Level, string Text)> _lines = [];
        private readonly SemaphoreSlim _written = new(0);

        public List<(LogLevel Level, string Text)> Lines
        {
            get { lock (_lines) return [.. _lines]; }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines) _lines.Add((logLevel, formatter(state, exception)));
            _written.Release();
        }

        public async Task WaitAsync(Func<List<(LogLevel Level, string Text)>, bool> done, TimeSpan timeout)
        {
            using var cancel = new CancellationTokenSource(timeout);
            while (!done(Lines))
            {
                try
                {
                    await _written.WaitAsync(cancel.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"not within {timeout}:\n{string.Join("\n", Lines)}");
                }
            }
        }
    }
}
