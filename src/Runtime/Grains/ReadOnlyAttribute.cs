namespace ControlPlane.Runtime.Grains;

/// <summary>
/// Marks a grain interface method that does not change state: it may run concurrently with other
/// read-only calls on the same activation, never with a writing call.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = true)]
public sealed class ReadOnlyAttribute : Attribute;
