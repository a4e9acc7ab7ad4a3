using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Contracts.Hosting;

/// <summary>What every program of the project sets up the same way: its configuration sources and logs.</summary>
public static class ProgramDefaults
{
    /// <summary>
    /// Reads <paramref name="configFile"/> beside the binary (lowest precedence; a name of its own,
    /// since several programs' outputs may share a directory), then the environment with the
    /// CONTROLPLANE_ prefix, then the command line; logs one line per event with timestamps.
    /// </summary>
    public static void Apply(IHostApplicationBuilder builder, string? configFile = null)
    {
        if (configFile is not null)
        {
            builder.Configuration.Sources.Insert(0, new JsonConfigurationSource { Path = configFile, Optional = true, ReloadOnChange = false });
        }
        builder.Configuration.AddEnvironmentVariables("CONTROLPLANE_");
        if (builder.Configuration is IConfigurationBuilder sources && sources.Sources.OfType<Microsoft.Extensions.Configuration.CommandLine.CommandLineConfigurationSource>().LastOrDefault() is { } commandLine)
        {
            // The command line keeps the last word over the prefixed environment.
            sources.Sources.Remove(commandLine);
            sources.Sources.Add(commandLine);
        }
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
    }
}
