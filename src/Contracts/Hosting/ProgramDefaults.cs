using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace ControlPlane.Contracts.Hosting;

/// <summary>What every program of the project sets up the same way: its configuration sources and logs.</summary>
public static class ProgramDefaults
{
    /// <summary>How log lines give their time: ISO 8601, UTC, milliseconds.</summary>
    public const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

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
        // One line per event with a UTC date and time, unless the configuration chooses otherwise:
        // Logging:Console:FormatterName (simple, json, systemd) and its FormatterOptions are honoured.
        var console = builder.Configuration.GetSection("Logging:Console");
        // A slim web builder adds the simple formatter itself, over the configured name: the name
        // is set again after it.
        if (console["FormatterName"] is { Length: > 0 } formatter) builder.Services.Configure<ConsoleLoggerOptions>(o => o.FormatterName = formatter);
        else builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        if (string.IsNullOrEmpty(console["FormatterOptions:TimestampFormat"]))
        {
            builder.Services.Configure<SimpleConsoleFormatterOptions>(o => (o.TimestampFormat, o.UseUtcTimestamp) = (TimestampFormat + " ", true));
            builder.Services.Configure<JsonConsoleFormatterOptions>(o => (o.TimestampFormat, o.UseUtcTimestamp) = (TimestampFormat, true));
        }
    }
}
