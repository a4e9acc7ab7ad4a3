using ControlPlane.Contracts.Hosting;
using ControlPlane.Silo.Hosting;
using ControlPlane.Storage.Errors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

const string Usage = """
    Usage: ControlPlane.Silo [--Section:Key=value ...]

    Runs the control plane: Orleans with every grain, the durable store (SQLite in
    Silo:DataDirectory) and the gRPC API (Silo:ListenAddress:Silo:Port, default 127.0.0.1:7070),
    with the cluster DNS server inside (Dns:Enabled, default on 127.0.0.1:1053).

    Common settings:
      --Silo:DataDirectory=data          where the store lives (locked while the silo runs)
      --Silo:Port=7070                   gRPC API port (0: pick a free one)
      --Silo:SynchronousFull=true        fsync every commit (survives power loss)
      --Cluster:Membership=localhost     or redis, with --Cluster:Redis=host:port
      --Cluster:IdleTimeout=00:10:00     idle grains are collected after this long
      --Dns:Enabled=false                no embedded DNS server
    """;

if (ProgramInfo.EarlyExit(args, "ControlPlane.Silo", Usage, "Silo", "Store", "Cluster", "ControlPlane", "Dns", "Audit", "Limits", "Tls", "ClusterSet", "Metrics") is { } exit)
{
    return exit;
}
try
{
    await using var app = SiloApp.Build(args);
    // Only the silo's own process is ended this way (not a test host running a silo inside it).
    ProcessEnd.BoundStop(app.Lifetime, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ControlPlane.Silo"));
    await app.RunAsync();
    return 0;
}
catch (IOException e) when (e is ListenAddressException || e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
{
    // Another process listens there (often a silo already running): one line, not a crash.
    Console.Error.WriteLine($"ControlPlane.Silo: {e.Message}");
    return 1;
}
catch (StackExchange.Redis.RedisConnectionException e)
{
    // The membership Redis went away between the check at start and Orleans' own connection.
    Console.Error.WriteLine($"ControlPlane.Silo: the membership Redis cannot be reached (Cluster:Redis): {e.FailureType}");
    return 1;
}
catch (InvalidConfigurationException e)
{
    Console.Error.WriteLine($"ControlPlane.Silo: {e.Message}");
    return 2;
}
catch (Exception e) when (e is ControlPlaneException or InvalidOperationException)
{
    // The message says what to do; the exception inside is for a debugger, not the operator.
    Console.Error.WriteLine($"ControlPlane.Silo: {ProgramInfo.Reason(e)}");
    return 1;
}
