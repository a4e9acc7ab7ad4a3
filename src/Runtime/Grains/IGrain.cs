namespace ControlPlane.Runtime.Grains;

/// <summary>
/// Marker for grain interfaces. A grain is addressed by its interface and a string key; every
/// method returns <see cref="Task"/> or <see cref="Task{TResult}"/>.
/// </summary>
public interface IGrain;
