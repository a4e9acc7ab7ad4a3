namespace ControlPlane.Contracts.Hosting;

/// <summary>
/// Settings that cannot work together or at all, found before anything was opened: the program
/// stops with the message and exit code 2, as for an unknown setting. (Something the settings
/// name that cannot be reached, a taken port or a store that does not answer, is exit code 1.)
/// </summary>
public sealed class InvalidConfigurationException(string message) : InvalidOperationException(message);
