"""Export reviewed clips as a LeRobot v3.0 dataset, and check such a dataset as a loader would.

Layout (LeRobot ``codebase_version`` "v3.0": many episodes per file)::

    meta/info.json                                  fps, totals, path templates, features
    meta/stats.json                                 per-feature min/max/mean/std/count(/q..)
    meta/tasks.parquet                              task (index) -> task_index
    meta/episodes/chunk-000/file-000.parquet        one row per episode (+ provenance)
    data/chunk-CCC/file-FFF.parquet                 one row per video frame
    videos/{video_key}/chunk-CCC/file-FFF.mp4       the same episodes, back to back

Time model: every episode is resampled onto one constant frame grid. Frame ``k`` of an episode
is the source video at ``start_s + k / fps`` and its ``timestamp`` is exactly ``k / fps``
(float32), so LeRobot's 1e-4 s tolerance can never trip on capture jitter. The robot's own
clock is interpolated onto the same instants and kept in ``device_time_ns``; it is evidence,
never a timestamp. ``action`` is the next frame's observed state (the log has no commands);
the last frame of an episode holds its own state rather than borrowing data past the clip.

Depth (``include_depth``, opt-in): ``observation.depth`` is frame ``k``'s depth map (uint16
millimetres, shape [height, width], 0 = no return) from the clip's depth stream, and
``observation.depth_valid`` is False where the sensor dropped that frame (the map is then all
zeros). A clip whose segment has no depth stream is refused, naming it.

Modules, one job each (import names from the module that owns them):

- ``layout``: format version, path templates, feature keys, tolerances.
- ``model``: ``EpisodeSource`` (input), ``LeRobotExport``/``ExportedFile`` (output), errors.
- ``trajectory``: episode windows and trajectory sampling onto the frame grid.
- ``video``: every ffmpeg call (source probe, encode, sampled decode, loader-side probe).
- ``depth``: depth streams probed, aligned to the frame grid and decoded into maps.
- ``stats``: LeRobot per-feature statistics (numeric, image and depth).
- ``tables``: features of info.json, the data, episodes and tasks tables.
- ``files``: staging, publishing and the file inventory of an export.
- ``export``: ``export_lerobot``, the exporter.
- ``validate``/``validate_schema``/``validate_depth``: ``validate_lerobot``, the loader-style
  validator.
"""
